#!/usr/bin/python3
"""End-to-end browser test of the setup page: Debian's chromium, driven by chromedriver through
Debian's python3-selenium, against the real mailconfd on 127.0.0.1:0.

Usage: setup_page_test.py MAILCONFD_BINARY ARTIFACT_DIR
Screenshots go to ARTIFACT_DIR (tests/artifacts/, gitignored). Exit 0 only if every check passed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from chromium import check, csp_errors, screenshot, start_browser, stop_mailconfd, verdict


def start_mailconfd(binary, log):
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=log, text=True)
    deadline = time.monotonic() + 30
    line = ""
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline and "\n" not in line:
        chunk = proc.stdout.readline()
        if chunk:
            line += chunk
        else:
            time.sleep(0.05)
    match = re.match(r"listening on (http://127\.0\.0\.1:\d+)", line)
    if not match:
        proc.kill()
        sys.exit(f"mailconfd did not become ready: {line!r}")
    return proc, match.group(1)


def submit_address(driver, address):
    field = driver.find_element(By.ID, "emailaddress")
    field.clear()
    field.send_keys(address)
    old = driver.current_url
    field.send_keys(Keys.ENTER)  # keyboard only
    WebDriverWait(driver, 20).until(lambda d: d.current_url != old)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState")
                                    == "complete")


def text_of(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def settings_shown(driver):
    values = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".server dd")]
    return values


def main():
    binary, artifacts = sys.argv[1], sys.argv[2]
    os.makedirs(artifacts, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="mailconfd-chromium-")
    log_path = os.path.join(profile, "mailconfd.log")
    log = open(log_path, "w")
    proc, base = start_mailconfd(binary, log)
    driver = None
    try:
        driver = start_browser(profile, "de-DE,de", 1000)
        # 1. German from Accept-Language; the form is reachable by its label.
        driver.get(base + "/")
        check(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de",
              "Accept-Language de gives the German page")
        check(text_of(driver, "label[for=emailaddress]") == "Ihre E-Mail-Adresse",
              "the address field has a German label")
        check("SMTP-after-POP wurde am 2. September 2013 abgeschaltet." in text_of(driver, ".when"),
              "the notice shows the past date in German, in the past tense")
        check(len(driver.find_elements(By.ID, "general-title")) == 1
              and "smtp.example.net" in settings_shown(driver),
              "the home page shows the general settings before an address is entered")
        check("erika@example.net" in text_of(driver, "#email-hint"),
              "the example address uses the provider's own domain")
        check("offenen WLAN" in text_of(driver, ".notice"), "the provider's notice is shown")
        check(driver.execute_script(
            "return getComputedStyle(document.querySelector('.page')).maxWidth") != "none",
            "the inline style is applied (its CSP hash matches)")
        check(csp_errors(driver) == [], f"no CSP violations: {csp_errors(driver)}")

        # 2. Enter an address and submit with the keyboard.
        submit_address(driver, "alice@example.com")
        check(driver.current_url == base + "/setup?emailaddress=alice%40example.com&lang=de",
              f"the form submits with GET to /setup?emailaddress=… ({driver.current_url})")
        shown = settings_shown(driver)
        for expected in ("imap.example.net", "993", "pop.example.net", "995", "smtp.example.net",
                         "587", "STARTTLS", "SSL/TLS", "Passwort, normal", "alice@example.com"):
            check(expected in shown, f"German settings show {expected}")
        check(text_of(driver, "h2#settings-title") == "Einstellungen für alice@example.com",
              "German settings heading names the address")
        profile_link = driver.find_element(By.CSS_SELECTOR, "a.button")
        check(profile_link.get_attribute("href")
              == base + "/email.mobileconfig?emailaddress=alice%40example.com",
              "the Apple Mail button links to the signed profile")
        check(profile_link.text == "Profil für Apple Mail laden", "the profile button is German")
        for anchor in ("after-pop", "thunderbird", "outlook", "new-outlook", "apple",
                       "windows-mail", "outlook-2010", "outlook-2007", "live-mail", "opera",
                       "android"):
            check(len(driver.find_elements(By.ID, anchor)) == 1, f"instructions for {anchor}")
        check("Vor dem Senden bei Posteingangsserver anmelden" in text_of(driver, "#after-pop")
              or "Vor dem Senden bei Posteingangsserver anmelden" in driver.page_source,
              "the SMTP-after-POP option is named")
        check("Nicht überprüft" in text_of(driver, "section[aria-labelledby=apple]")
              and "signiertes Profil" not in driver.page_source,
              "an unsigned profile is not called signed, and the page says what iOS shows")
        screenshot(driver, os.path.join(artifacts, "setup-de.png"), 1000)

        # 2a. At 1280 px the two columns of "Schritt für Schritt" keep room for the bullets:
        # the gap between the first column's text and the second column's items.
        for lang in ("en", "de"):
            driver.set_window_size(1280, 900)
            driver.get(base + f"/setup?lang={lang}&emailaddress=alice%40example.com")
            time.sleep(0.2)
            gap = driver.execute_script("""
                const items = [...document.querySelectorAll('nav li')];
                const left = items[0].getBoundingClientRect().left;
                const second = items.find(li => li.getBoundingClientRect().left > left + 10);
                if (!second) return -1;
                const column = second.getBoundingClientRect().left;
                let right = 0;
                for (const li of items) {
                  if (li.getBoundingClientRect().left >= column - 1) continue;
                  const range = document.createRange();
                  range.selectNodeContents(li);
                  for (const r of range.getClientRects()) right = Math.max(right, r.right);
                }
                return column - right;""")
            check(gap >= 30,
                  f"the step-by-step columns do not touch at 1280 px, {lang} (gap {gap:.0f} px)")
        screenshot(driver, os.path.join(artifacts, "setup-de-1280.png"), 1280)
        driver.get(base + "/setup?emailaddress=alice%40example.com&lang=de")
        # 3. The language switch keeps the address.
        driver.set_window_size(1000, 900)
        driver.find_element(By.CSS_SELECTOR, "a[hreflang=en]").click()
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
        check(driver.current_url == base + "/setup?lang=en&emailaddress=alice%40example.com",
              "the English link keeps the address")
        shown = settings_shown(driver)
        check("Normal password" in shown and "smtp.example.net" in shown,
              "English settings are shown")
        check(text_of(driver, "a.button") == "Download profile for Apple Mail",
              "the profile button is English")
        check("SMTP-after-POP was switched off on 2 September 2013." in text_of(driver, ".when"),
              "the notice shows the past date in English, in the past tense")
        screenshot(driver, os.path.join(artifacts, "setup-en.png"), 1000)

        # 4. A phone-sized window: no horizontal scrolling.
        driver.set_window_size(390, 844)
        time.sleep(0.2)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        check(overflow <= 0, f"no horizontal overflow at 390 px ({overflow} px)")
        screenshot(driver, os.path.join(artifacts, "setup-en-phone.png"), 390)

        # 5. A hostile address is shown as text; nothing is injected.
        driver.set_window_size(1000, 900)
        driver.get(base + "/setup?lang=en")
        hostile = "\"><img src=x onerror=alert(1)><b id=pwn>x</b>'@example.com"
        submit_address(driver, hostile)
        check(driver.find_elements(By.TAG_NAME, "img") == [], "no <img> was injected")
        check(driver.find_elements(By.ID, "pwn") == [], "no <b id=pwn> was injected")
        check(text_of(driver, "#problem strong") == hostile, "the hostile input is shown as text")
        check(driver.find_element(By.ID, "emailaddress").get_attribute("value") == hostile,
              "the hostile input is back in the field, unchanged")
        check(driver.find_element(By.ID, "emailaddress").get_attribute("aria-invalid") == "true",
              "the field is marked invalid")
        screenshot(driver, os.path.join(artifacts, "setup-hostile.png"), 1000)

        # 5a. What customers paste from their mail program is read.
        driver.set_window_size(1000, 900)
        driver.get(base + "/setup?lang=en")
        submit_address(driver, "Alice Example <alice@example.com>")
        check(text_of(driver, "h2#settings-title") == "Settings for alice@example.com",
              "a pasted 'Name <address>' shows the address's settings")
        driver.get(base + "/setup?lang=en")
        submit_address(driver, "mailto:alice@example.com")
        check(text_of(driver, "h2#settings-title") == "Settings for alice@example.com",
              "a pasted mailto: address shows the address's settings")

        # 6. A domain that is not hosted gets the friendly message.
        driver.set_window_size(1000, 900)
        submit_address(driver, "bob@elsewhere.example")
        check("We do not host mail for “bob@elsewhere.example”" in text_of(driver, "#problem"),
              "an unknown domain gets a friendly message")
        check(csp_errors(driver) == [], f"still no CSP violations: {csp_errors(driver)}")
    finally:
        if driver is not None:
            driver.quit()
        status, text = stop_mailconfd(proc, log, log_path)
        check(status == 0, f"mailconfd stopped cleanly on SIGTERM (exit {status})")
        check("Sanitizer" not in text and "alice" not in text,
              "mailconfd's log has no sanitizer report and no address")
        check(" /favicon.ico 404 " not in text,
              "the browser's /favicon.ico requests are answered, not logged as 404s")
        shutil.rmtree(profile, ignore_errors=True)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
