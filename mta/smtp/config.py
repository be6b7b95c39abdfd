"""The protocol settings of one listening server (policy lives in the chain)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

from mta.ondemand.etrn import EtrnPolicy


@dataclass
class ServerConfig:
    """Protocol settings of one listening server (policy lives in the chain).

    Defaults are Postfix's where Postfix has the setting: 300 s idle
    timeout, hard error limit 20; 512-octet command lines (RFC 5321).
    ``users`` (name -> password) switches AUTH PLAIN/LOGIN on; simulation
    has no TLS, so ``auth_require_tls`` defaults to False.  ``tls_context``
    (an ``ssl.SSLContext`` with the server's certificate) offers STARTTLS
    (RFC 3207); ``auth_require_tls`` then offers AUTH only after it, and
    ``require_starttls`` refuses mail commands until it (530 5.7.0).
    """

    banner: str = ""                      # greeting text; default "<host> ESMTP"
    idle_timeout: float = 300.0
    command_size_limit: int = 512
    line_length_limit: int = 1001
    hard_error_limit: int = 20
    command_call_limits: dict[str, int] | None = None
    users: dict[str, str] | None = None
    auth_require_tls: bool = False
    tls_context: Any = None
    require_starttls: bool = False
    etrn: EtrnPolicy = field(default_factory=lambda: EtrnPolicy(enabled=False))
    add_received: bool = True
    port: int = 25

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if self.command_size_limit < 512:
            raise ValueError("RFC 5321 §4.5.3.1.4: command lines of 512 octets must be accepted")
        if self.hard_error_limit < 1:
            raise ValueError("hard_error_limit must be at least 1")
        if self.require_starttls and self.tls_context is None:
            raise ValueError("require_starttls needs a tls_context")

    def authenticator(self) -> Any:
        """aiosmtpd's ``authenticator`` checking ``users``, or None (AUTH off)."""
        users = self.users
        if users is None:
            return None

        def check(server: Any, session: Any, envelope: Any, mechanism: str,
                  data: Any) -> AuthResult:
            if isinstance(data, LoginPassword):
                user = data.login.decode("utf-8", "replace")
                if users.get(user) == data.password.decode("utf-8", "replace"):
                    return AuthResult(success=True, auth_data=data)
            return AuthResult(success=False, handled=False)
        return check
