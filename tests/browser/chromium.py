"""What the browser tests share: Debian's chromium driven by chromedriver through Debian's
python3-selenium, the check() bookkeeping, screenshots, CSP violations from the console, and
stopping mailconfd with SIGTERM to read its log."""
import os
import subprocess
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FAILURES = []


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message, flush=True)
    if not condition:
        FAILURES.append(message)


def verdict():
    """The test's exit status: 0 only if every check passed."""
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", flush=True)
        return 1
    print("all checks passed", flush=True)
    return 0


def start_browser(profile_dir, accept_language, width, downloads=None):
    """Headless chromium with its own profile, the given Accept-Language, the console log
    kept (for csp_errors) and, with downloads, files saved there without a prompt."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--force-device-scale-factor=1",
                 f"--user-data-dir={profile_dir}", f"--accept-lang={accept_language}",
                 f"--window-size={width},900"):
        options.add_argument(flag)
    if downloads:
        options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                                  "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    if downloads:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": downloads})
    return driver


def screenshot(driver, path, width):
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height, 600), 8000))
    time.sleep(0.2)
    driver.save_screenshot(path)
    print(f"     screenshot {path}", flush=True)


def csp_errors(driver):
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused" in e["message"]]


def stop_mailconfd(proc, log, log_path):
    """SIGTERM, then the exit status (or a note that it had to be killed) and the log text."""
    proc.terminate()
    try:
        status = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        status = "killed after 20 s"
    log.close()
    with open(log_path, errors="replace") as f:
        return status, f.read()
