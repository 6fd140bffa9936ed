// The Files page: uploads one file after another with a progress bar, answered in JSON.
// Without JavaScript the form posts as usual and the page reports the result.
(function () {
  "use strict";
  var STORED = "mft-upload-results";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var input = document.getElementById("upload-files");
  var panel = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var status = document.getElementById("upload-status");
  var list = document.getElementById("upload-results");
  var button = form.querySelector("button[type=submit]");
  var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function show(lines) {
    panel.hidden = false;
    list.textContent = "";
    lines.forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line.text;
      item.className = line.ok ? "text-success upload-ok" : "text-danger upload-error";
      list.appendChild(item);
    });
  }

  // Results of the uploads made just before this page was reloaded.
  try {
    var kept = JSON.parse(window.sessionStorage.getItem(STORED) || "null");
    window.sessionStorage.removeItem(STORED);
    if (kept) {
      show(kept.lines);
      bar.value = 100;
      status.textContent = kept.status;
    }
  } catch (ignored) { /* storage may be unavailable: the listing still shows the files */ }

  function sizeText(bytes) {
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
  }

  form.addEventListener("submit", function (event) {
    var files = Array.prototype.slice.call(input.files);
    if (!files.length) return;
    event.preventDefault();
    var total = files.reduce(function (sum, f) { return sum + f.size; }, 0) || 1;
    var finished = 0, lines = [];
    button.disabled = true;
    input.disabled = true;
    panel.hidden = false;
    bar.value = 0;
    show(lines);

    function next(index) {
      if (index >= files.length) {
        bar.value = 100;
        var failed = lines.filter(function (l) { return !l.ok; }).length;
        var text = (files.length - failed) + " of " + files.length + " file" + (files.length === 1 ? "" : "s") + " uploaded.";
        status.textContent = text;
        try { window.sessionStorage.setItem(STORED, JSON.stringify({lines: lines, status: text})); } catch (ignored) {}
        window.location.reload();
        return;
      }
      var file = files[index];
      var data = new FormData();
      data.append("files", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRFToken", token);
      xhr.setRequestHeader("Accept", "application/json");
      status.textContent = "Uploading " + file.name + " (" + (index + 1) + " of " + files.length + ")…";
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable && e.total) {
          bar.value = Math.min(99, 100 * (finished + file.size * e.loaded / e.total) / total);
        }
      });
      xhr.addEventListener("load", function () {
        var answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (ignored) {}
        if (answer && answer.files && answer.files.length) {
          answer.files.forEach(function (r) {
            lines.push(r.error ? {ok: false, text: r.name + ": " + r.error}
                               : {ok: true, text: "Uploaded " + r.name + " (" + sizeText(r.size) + ")"});
          });
        } else {
          lines.push({ok: false, text: file.name + ": " + ((answer && answer.error) || "the server refused the upload (" + xhr.status + ").")});
        }
        finished += file.size;
        show(lines);
        next(index + 1);
      });
      xhr.addEventListener("error", function () {
        lines.push({ok: false, text: file.name + ": the connection failed."});
        finished += file.size;
        show(lines);
        next(index + 1);
      });
      xhr.send(data);
    }
    next(0);
  });
})();
