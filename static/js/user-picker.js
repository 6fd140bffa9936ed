// User pickers: an input with data-suggest and a list attribute gets the users matching what is
// typed (username or full name) as suggestions, from the service itself.
(function () {
  "use strict";
  function attach(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var timer = null, asked = "";
    if (!list) return;
    input.addEventListener("input", function () {
      var query = input.value.trim();
      window.clearTimeout(timer);
      if (!query || query === asked) return;
      timer = window.setTimeout(function () {
        asked = query;
        fetch(input.dataset.suggest + "?q=" + encodeURIComponent(query), {credentials: "same-origin"})
          .then(function (response) { return response.ok ? response.json() : {users: []}; })
          .then(function (answer) {
            list.replaceChildren.apply(list, answer.users.map(function (user) {
              var option = document.createElement("option");
              option.value = user.username;
              option.label = user.full_name ? user.username + " (" + user.full_name + ")" : user.username;
              return option;
            }));
          })
          .catch(function () { /* no suggestions: the username can still be typed */ });
      }, 150);
    });
  }
  document.querySelectorAll("input[data-suggest][list]").forEach(attach);
})();
