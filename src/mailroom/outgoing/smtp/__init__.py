"""The SMTP edge: one connection to one MailServer (transport.py), what servers answer, in
plain words (smtp_errors.py), the envelope as it goes on the wire (envelope.py), connections
kept between passes (pool.py) and the connection test (probe.py). No database writes."""
