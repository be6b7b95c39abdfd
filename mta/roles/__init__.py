"""Receiving-half role configurations: validated dataclasses that build a
server.

Each role is a frozen dataclass whose fields are the settings an operator
would write (domains, networks, limits); ``__post_init__`` refuses settings
that cannot work (RoleError, naming the field).  ``build_chain`` turns a role
into its policy chain, always in the same stage order::

    allow-list, block list, DNSBL        (connect, or RCPT for the last two)
    HELO check                           (HELO/EHLO)
    size limit                           (MAIL, DATA)
    before_relay stages                  (later: POP-before-SMTP, AUTH rules)
    relay control                        (RCPT)
    after_relay stages                   (later: greylisting, virus, spam...)
    recipient limit                      (RCPT, last: counts only accepted)

The roles, one module per service (:mod:`~mta.roles.base` for what they share):

* :class:`PrimaryMx`: final destination (or gateway) for its local domains.
* :class:`BackupMx`: secondary MX, relays for the domains it backs up, only
  to known recipients when a list is given (Postfix relay_recipient_maps).
* :class:`QueueingServer`: holds mail for dial-up customers' domains and
  releases it on ETRN or finger.
* :class:`CustomerMailServer`: final delivery into mailboxes; may be
  locked down to its feed, loopback and LAN (``feed-lockdown``).
* :class:`SmartHost`: relays for its customers' networks or after AUTH;
  requires fully qualified HELO names.
* :class:`IspOutbound`: relays for subscribers, refuses customer-run mail
  servers inside its address space.
* :class:`RestrictedRelay`: the restricted relays of seeds 002/003: nobody
  relays by default; SMTP AUTH (530 5.7.0 until authenticated) or a POP3
  login (POP-before-SMTP, its own POP3 server) opens it; MAIL FROM may be
  tied to the user's domains; blocked attachments refused at end of DATA.
* :class:`SmtpFeed`: the provider's feed for its clients' domains:
  greylisting at RCPT, then after queueing a virus scan (not optional) and
  spam levels (off by default), then delivery to the client's server.
"""
from mta.roles.base import ReceivingRole, RoleError
from mta.roles.feed import SmtpFeed
from mta.roles.mx import (BackupMx, CustomerMailServer, IspOutbound, PrimaryMx, QueueingServer,
                          SmartHost)
from mta.roles.relay import RestrictedRelay

__all__ = ["BackupMx", "CustomerMailServer", "IspOutbound", "PrimaryMx", "QueueingServer",
           "ROLES", "ReceivingRole", "RestrictedRelay", "RoleError", "SmartHost", "SmtpFeed"]

#: Every role by its name.
ROLES: dict[str, type[ReceivingRole]] = {
    cls.role: cls for cls in (PrimaryMx, BackupMx, QueueingServer, CustomerMailServer,
                              SmartHost, IspOutbound, SmtpFeed, RestrictedRelay)
}
