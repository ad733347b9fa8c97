#!/usr/bin/python3
"""End-to-end browser test of the cut-off cockpit: Debian's chromium, driven by chromedriver
through Debian's python3-selenium, against the real mailconfd with a seeded scan report and a
journal filled by fetches through the public listener.

Usage: cockpit_test.py MAILCONFD_BINARY ARTIFACT_DIR
Screenshots go to ARTIFACT_DIR (tests/artifacts/, gitignored): cockpit-en.png, cockpit-de.png,
cockpit-phone.png. Exit 0 only if every check passed.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from chromium import check, csp_errors, screenshot, start_browser, stop_mailconfd, verdict

PASSWORD = "correct horse battery"


def mailbox(address, state, confidence, ip, last_seen):
    return {"address": address, "domain": address.split("@")[1], "provider": "example.net",
            "state": state, "confidence": confidence, "first_seen": "2026-11-20T08:00:00Z",
            "last_seen": last_seen, "ips": [ip]}


REPORT = {
    "generated": "2026-12-02T06:00:00Z",
    "mailboxes": [
        mailbox("alice@example.com", "at-risk", "high", "127.0.0.21", "2026-12-02T05:00:00Z"),
        mailbox("bob@example.com", "switched", "explicit", "127.0.0.22", "2026-12-01T22:00:00Z"),
        mailbox("carol@example.com", "at-risk", "medium", "127.0.0.23", "2026-12-02T04:00:00Z"),
        mailbox("dave@example.org", "at-risk", "explicit", "127.0.0.24", "2026-12-02T03:00:00Z"),
        mailbox("erin@example.org", "ambiguous", "low", "127.0.0.25", "2026-12-02T02:00:00Z"),
        mailbox("frank@example.org", "switched", "explicit", "127.0.0.26",
                "2026-12-01T20:00:00Z"),
    ],
    "domains": [], "summary": {},
}


def prepare(binary, workdir):
    made = subprocess.run([binary, "cockpit", "password", "admin"], input=PASSWORD + "\n",
                          capture_output=True, text=True, check=True)
    with open(os.path.join(workdir, "cockpit.passwd"), "w") as f:
        f.write(made.stdout)
    with open(os.path.join(workdir, "scan.json"), "w") as f:
        json.dump(REPORT, f)
    config = os.path.join(workdir, "mailconfd.xml")
    with open(config, "w") as f:
        f.write("""<mailconfd>
<setup lang="en"/>
<server listen="127.0.0.1:0"><metrics listen="127.0.0.1:0"/></server>
<journal file="journal.sqlite"/>
<cockpit report="scan.json" password-file="cockpit.passwd"/>
<provider id="example.net">
<display-name>Example Mail</display-name>
<incoming protocol="imap" host="imap.example.net" port="993" security="tls"/>
<outgoing host="smtp.example.net" port="587" security="starttls"/>
<notice smtp-after-pop-off="2099-01-01"><text lang="en">Bye</text></notice>
<domain>example.com</domain>
<domain>example.org</domain>
</provider>
</mailconfd>
""")
    # Yesterday's and an older day's counts, as the cockpit would have written them.
    return config


def start_mailconfd(binary, config, log):
    proc = subprocess.Popen([binary, "serve", "--config", config], stdout=subprocess.PIPE,
                            stderr=log, text=True)
    deadline = time.monotonic() + 30
    text = ""
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline and "listening on" not in text:
        chunk = proc.stdout.readline()
        if chunk:
            text += chunk
        else:
            time.sleep(0.05)
    admin = re.search(r"metrics on (http://127\.0\.0\.1:\d+)/metrics", text)
    public = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
    if not admin or not public:
        proc.kill()
        sys.exit(f"mailconfd did not become ready: {text!r}")
    return proc, admin.group(1), public.group(1)


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def count(driver, state):
    return driver.find_element(By.CSS_SELECTOR, f"#count-{state} .n").text


def main():
    binary, artifacts = sys.argv[1], sys.argv[2]
    os.makedirs(artifacts, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="mailconfd-cockpit-")
    downloads = os.path.join(workdir, "downloads")
    os.makedirs(downloads)
    config = prepare(binary, workdir)
    log_path = os.path.join(workdir, "mailconfd.log")
    log = open(log_path, "w")
    proc, admin, public = start_mailconfd(binary, config, log)
    driver = None
    auth = {"Authorization": "Basic " +
            base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
    try:
        # The journal: alice and dave fetch new settings (Thunderbird, Outlook), gina only
        # fetches (no log evidence yet).
        for url, agent in (
                ("/mail/config-v1.1.xml?emailaddress=alice%40example.com", "Thunderbird/115.0"),
                ("/autodiscover/autodiscover.xml?emailaddress=dave%40example.org",
                 "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0)"),
                ("/setup?emailaddress=gina%40example.com", "Mozilla/5.0 (X11) Chrome/120")):
            status, _ = fetch(public + url, {"User-Agent": agent})
            check(status == 200, f"public fetch {url} answers 200")
        status, _ = fetch(public + "/cockpit", auth)
        check(status == 404, "the public listener has no cockpit")
        status, _ = fetch(admin + "/cockpit")
        check(status == 401, "the admin listener asks for credentials")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, body = fetch(admin + "/cockpit/contacts.csv?state=unknown", auth)
            if b"gina@example.com" in body:
                break
            time.sleep(0.2)
        check(b"gina@example.com" in body, "the journal reached the cockpit")

        driver = start_browser(os.path.join(workdir, "profile"), "en-US,en", 1100, downloads)
        # 1. Without credentials: 401, nothing of the page.
        driver.get(admin + "/cockpit")
        check("Cut-off cockpit" not in driver.page_source, "no page without credentials")
        # 2. Log in (credentials in the URL; the browser keeps them for the origin).
        host = admin.replace("http://", "")
        driver.get(f"http://admin:{PASSWORD.replace(' ', '%20')}@{host}/cockpit")
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "count-at-risk"))
        check(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en",
              "English from Accept-Language")
        check(driver.find_element(By.TAG_NAME, "h1").text == "Cut-off cockpit", "English title")
        expected = {"at-risk": "1", "fetched": "2", "switched": "2", "ambiguous": "1",
                    "broke": "0", "login-failing": "0", "unknown": "1"}
        for state, n in expected.items():
            check(count(driver, state) == n, f"{state}: {count(driver, state)} (expected {n})")
        check("days left until SMTP-after-POP is switched off" in
              driver.find_element(By.ID, "when").text, "days left are shown")
        check(driver.execute_script(
            "return getComputedStyle(document.querySelector('.page')).maxWidth") != "none",
              "the inline style is applied (its CSP hash matches)")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#burn-down + svg polyline")) == 2,
              "the burn-down chart has its two lines")
        domains = [e.text for e in driver.find_elements(
            By.CSS_SELECTOR, "#domains + div tbody td:first-child")]
        check(domains == ["example.com", "example.org"], f"domains listed: {domains}")
        clients = driver.find_element(By.ID, "clients").find_element(
            By.XPATH, "following-sibling::table").text
        check("thunderbird" in clients and "outlook" in clients and "browser" in clients,
              "the client kinds that fetched are listed")
        screenshot(driver, os.path.join(artifacts, "cockpit-en.png"), 1100)

        # 3. Sorting by link: the per-domain table by progress, descending.
        driver.set_window_size(1100, 900)
        driver.find_element(By.CSS_SELECTOR, "#domains + div th a[href*='sort=progress']").click()
        WebDriverWait(driver, 20).until(lambda d: "sort=progress" in d.current_url)
        domains = [e.text for e in driver.find_elements(
            By.CSS_SELECTOR, "#domains + div tbody td:first-child")]
        check(domains == ["example.org", "example.com"],
              f"sorted by progress, descending: {domains}")

        # 4. Filter with the form (no JavaScript): state at risk.
        Select(driver.find_element(By.NAME, "state")).select_by_value("fetched")
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        WebDriverWait(driver, 20).until(lambda d: "state=fetched" in d.current_url)
        rows = [e.text for e in driver.find_elements(
            By.CSS_SELECTOR, "#list ~ div table.mailboxes tbody td.addr")]
        check(rows == ["alice@example.com", "dave@example.org"], f"filtered list: {rows}")

        # 5. The CSV download of that selection, byte for byte as the server sends it.
        driver.find_element(By.ID, "csv").click()
        target = os.path.join(downloads, "mailconfd-contacts.csv")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not os.path.exists(target):
            time.sleep(0.2)
        check(os.path.exists(target), "the CSV was downloaded")
        if os.path.exists(target):
            with open(target, "rb") as f:
                downloaded = f.read()
            _, served = fetch(admin + "/cockpit/contacts.csv?lang=en&state=fetched", auth)
            check(downloaded == served, "the downloaded CSV is the served bytes")
            check(downloaded.startswith(b"address,domain,provider,state,confidence,ips,"),
                  "the CSV has its header line")
            check(downloaded.count(b"\r\n") == 3, "header + two mailboxes")

        # 6. German.
        driver.find_element(By.CSS_SELECTOR, "header a[lang=de]").click()
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de")
        check(driver.find_element(By.TAG_NAME, "h1").text == "Cockpit zur Umstellung",
              "German title")
        check("Tage bis SMTP-after-POP abgeschaltet wird" in
              driver.find_element(By.ID, "when").text, "German days left")
        check("neue Einstellungen abgerufen" in driver.find_element(By.ID, "count-fetched").text,
              "German state names")
        driver.get(admin + "/cockpit?lang=de")
        screenshot(driver, os.path.join(artifacts, "cockpit-de.png"), 1100)

        # 7. A phone: no horizontal scrolling of the page (wide tables scroll in their box).
        driver.set_window_size(390, 844)
        driver.get(admin + "/cockpit?lang=en")
        time.sleep(0.3)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        check(overflow <= 0, f"no horizontal overflow at 390 px ({overflow} px)")
        screenshot(driver, os.path.join(artifacts, "cockpit-phone.png"), 390)
        check(csp_errors(driver) == [], f"no CSP violations: {csp_errors(driver)}")
    finally:
        if driver is not None:
            driver.quit()
        status, text = stop_mailconfd(proc, log, log_path)
        check(status == 0, f"mailconfd stopped cleanly on SIGTERM (exit {status})")
        check("Sanitizer" not in text and "alice" not in text and PASSWORD not in text,
              "mailconfd's log has no sanitizer report, no address and no password")
        shutil.rmtree(workdir, ignore_errors=True)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
