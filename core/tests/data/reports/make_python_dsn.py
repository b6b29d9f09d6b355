"""Writes 006-python-email.eml: an RFC 3464 report made by Python's email
package (not by hand), as an independent producer for the corpus.
Run: python3 make_python_dsn.py (deterministic: fixed dates and boundary)."""
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.mime.message import MIMEMessage
from email import policy


def group(**fields):
    m = Message()
    for name, value in fields.items():
        m[name.replace("_", "-")] = value
    return m


report = MIMEMultipart("report", report_type="delivery-status", boundary="py-dsn-boundary")
report["From"] = "Mail Delivery System <MAILER-DAEMON@py.example.net>"
report["To"] = "sender@example.com"
report["Subject"] = "Delivery Status Notification"
report["Date"] = "Sat, 05 Dec 2026 00:00:00 +0000"
report.attach(MIMEText("Delivery to some recipients failed or is delayed.\n"))

status = Message()
status.set_type("message/delivery-status")
status.set_payload([
    group(Reporting_MTA="dns; py.example.net", Arrival_Date="Sat, 05 Dec 2026 00:00:00 +0000"),
    group(Final_Recipient="rfc822; one@example.org", Action="failed", Status="5.1.1",
          Diagnostic_Code="smtp; 550 5.1.1 no such user", Remote_MTA="dns; mx.example.org"),
    group(Final_Recipient="rfc822; two@example.org", Action="delayed", Status="4.7.1",
          Diagnostic_Code="smtp; 451 4.7.1 greylisted, try later"),
    group(Final_Recipient="rfc822; three@example.org", Action="delivered", Status="2.0.0"),
])
del status["MIME-Version"]
report.attach(status)

original = Message()
original["From"] = "sender@example.com"
original["To"] = "one@example.org, two@example.org, three@example.org"
original["Subject"] = "hello"
original["Message-ID"] = "<py-original@example.com>"
original.set_payload("hello\n")
report.attach(MIMEMessage(original))

with open("006-python-email.eml", "wb") as f:
    f.write(report.as_bytes(policy=policy.compat32))
