"""FTPS data connections: always TLS, from the client's own address, with the control
connection's certificate.

pyftpdlib already refuses a data connection from any other address than the control
connection's (and PORT to another address or a privileged port), so nobody elsewhere can
steal or bounce a transfer. When the control connection presented a client certificate, the
data connection must present the same one (or resume the control connection's TLS session,
which carries it): someone else on the client's own machine who connects to the passive port
first gets nothing, and the attempt is audited.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.hashes import SHA256
from pyftpdlib.handlers import TLS_DTPHandler
from pyftpdlib.log import logger

from . import flows

BUFFER = 256 * 1024


class ProtectedDataHandler(TLS_DTPHandler):
    ac_in_buffer_size = BUFFER
    ac_out_buffer_size = BUFFER

    def __init__(self, sock, cmd_channel):
        self.refusal = ""
        super().__init__(sock, cmd_channel)

    def send(self, data):
        # An empty listing would otherwise go out as an empty TLS record, which clients such as
        # Python's ftplib take for a broken stream.
        if not data:
            return 0
        return super().send(data)

    def handle_ssl_established(self):
        expected = self.cmd_channel.certificate_fingerprint
        if expected is None:
            return
        cert = self.socket.get_peer_certificate(as_cryptography=True)
        if cert is not None and cert.fingerprint(SHA256()) == expected:
            return
        self.refusal = (
            "the data connection presented another certificate"
            if cert is not None
            else "the data connection presented no certificate"
        )
        self.cmd_channel.data_refusal = self.refusal
        if self.cmd_channel.user is not None:
            flows.refuse_data_connection(self.cmd_channel.user, self.refusal, self.cmd_channel.remote_ip)
        self._resp = (
            "425 The data connection must present the same client certificate as the control connection.",
            logger.warning,
        )
        self.close()
