"""The generated mail log of the cut-off scan's benchmark (cutover_bench.py), also scanned by
tests/e2e/cutover_output_test.py, which pins the scan's JSON report for a short version of it.

A realistic Debian 12 mail log (rsyslog RFC 3339 lines; Postfix smtpd, cleanup, qmgr,
smtp/lmtp deliveries, submission with AUTH, relay refusals, SASL failures, anvil and TLS
noise; Dovecot POP3/IMAP logins; IPv4, IPv6 and ::ffff:), the same bytes on every run (fixed
seed), with the configuration that hosts its 1,000 domains.
"""
import random
import time

DOMAINS = 1000
USERS = 50000

CONFIG = """<mailconfd><provider id="provider.test">
<incoming protocol="pop3" host="pop.provider.test" port="995" security="tls"/>
<outgoing host="smtp.provider.test" port="587" security="starttls"/>
<domains file="domains.txt"/></provider></mailconfd>
"""


def generate(path, lines, prefix_path, prefix_lines):
    """Writes `lines` lines; the first `prefix_lines` also go to prefix_path."""
    rng = random.Random(14)
    t = 1764633600.0  # 2025-12-02T00:00:00Z
    written = 0
    qid_counter = 0x10000000
    out = open(path, "w")
    prefix = open(prefix_path, "w")
    chunk = []

    def stamp():
        seconds = int(t)
        micros = int((t - seconds) * 1e6)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%06d+00:00 mail " % micros

    def ip():
        r = rng.random()
        if r < 0.85:
            return "198.%d.%d.%d" % (rng.randrange(18, 20), rng.randrange(256), rng.randrange(1, 255))
        if r < 0.95:
            return "2001:db8:%x::%x" % (rng.randrange(4096), rng.randrange(1, 65535))
        return "::ffff:203.0.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))

    def user():
        n = rng.randrange(USERS)
        return "user%d@customer%d.test" % (n, n % DOMAINS)

    while written < lines:
        t += rng.random() * 0.02
        s = stamp()
        kind = rng.random()
        pid = rng.randrange(1000, 60000)
        block = []
        client_ip = ip()
        if kind < 0.35:  # a POP3/IMAP login
            proto = "pop3" if rng.random() < 0.6 else "imap"
            block.append(s + "dovecot: %s-login: Login: user=<%s>, method=PLAIN, rip=%s, "
                         "lip=192.0.2.1, mpid=%d, TLS, session=<%x>" % (proto, user(), client_ip, pid, rng.getrandbits(64)))
            block.append(s + "dovecot: %s(%s)<%d><%x>: Disconnected: Logged out top=0/0, retr=1/2048, "
                         "del=0/1, size=2048" % (proto, user(), pid, rng.getrandbits(48)))
        elif kind < 0.85:  # a message: inbound, relayed without AUTH, or submitted with AUTH
            qid_counter += 1
            qid = "%X" % qid_counter
            sender = user()
            sub = rng.random()
            tag = "postfix/submission/smtpd" if sub < 0.3 else "postfix/smtpd"
            block.append(s + "%s[%d]: connect from unknown[%s]" % (tag, pid, client_ip))
            if sub < 0.3:
                block.append(s + "%s[%d]: %s: client=unknown[%s], sasl_method=PLAIN, sasl_username=%s" % (tag, pid, qid, client_ip, sender))
            else:
                block.append(s + "%s[%d]: %s: client=unknown[%s]" % (tag, pid, qid, client_ip))
            block.append(s + "postfix/cleanup[%d]: %s: message-id=<%x@pc.example>" % (pid + 1, qid, rng.getrandbits(64)))
            block.append(s + "postfix/qmgr[900]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)" % (qid, sender, rng.randrange(500, 90000)))
            block.append(s + "%s[%d]: disconnect from unknown[%s] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5" % (tag, pid, client_ip))
            if sub < 0.6:
                block.append(s + "postfix/smtp[%d]: %s: to=<friend%d@remote.example>, relay=mx.remote.example[198.51.100.25]:25, "
                             "delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as %X)" % (pid + 2, qid, rng.randrange(1000), rng.getrandbits(40)))
            else:
                block.append(s + "postfix/lmtp[%d]: %s: to=<%s>, relay=mail.provider.test[private/dovecot-lmtp], "
                             "delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (250 2.0.0 <%s> Saved)" % (pid + 2, qid, user(), sender))
            block.append(s + "postfix/qmgr[900]: %s: removed" % qid)
        elif kind < 0.92:  # refused relay attempts (spam) and dry-run warnings
            word = "reject" if rng.random() < 0.7 else "reject_warning"
            block.append(s + "postfix/smtpd[%d]: NOQUEUE: %s: RCPT from unknown[%s]: 554 5.7.1 <x@spam.example>: "
                         "Relay access denied; from=<%s> to=<x@spam.example> proto=ESMTP helo=<pc>" % (pid, word, client_ip, user()))
        elif kind < 0.95:
            block.append(s + "postfix/submission/smtpd[%d]: warning: unknown[%s]: SASL PLAIN authentication failed: "
                         "UGFzc3dvcmQ6, sasl_username=%s" % (pid, client_ip, user()))
        else:  # noise
            block.append(s + "postfix/anvil[77]: statistics: max connection rate 3/60s for (smtp:%s) at Dec  2 10:00:00" % client_ip)
            block.append(s + "postfix/smtpd[%d]: Anonymous TLS connection established from unknown[%s]: TLSv1.3 "
                         "with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" % (pid, client_ip))
        for line in block:
            if written >= lines:
                break
            chunk.append(line)
            written += 1
            if written <= prefix_lines:
                prefix.write(line + "\n")
        if len(chunk) >= 20000:
            out.write("\n".join(chunk) + "\n")
            chunk = []
    if chunk:
        out.write("\n".join(chunk) + "\n")
    out.close()
    prefix.close()
