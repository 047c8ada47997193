"""Provider feedback webhooks: spam complaints and bounces posted by the relay a server sends
through (Amazon SES via SNS, SendGrid, Mailgun) instead of mailed back as ARF/DSN.

- config.py: the kinds, their help texts, the webhook address and the key checks;
- sendgrid.py, ses.py (with sns.py, the SNS envelope and its signature), mailgun.py: each
  verifies its provider's signature and turns the payload into `Report`s;
- reports.py: the one writer — dedupes by event id, finds the mail in the server's company
  and calls outgoing.services.record_complaint / record_bounce (the report hooks);
- views.py: the endpoint, POST /hooks/feedback/<server token>/.
"""
