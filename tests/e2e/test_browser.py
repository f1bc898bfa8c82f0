"""The web page in Debian's Chromium (headless, driven by Playwright), served by a real
daemon (`nemowatch run`, the local engine): a file dropped shows its render's progress
moving, then appears as done, its page with the same timeline `explain --picture` draws;
/metrics counts it; a corrupt file appears failed with its error, and its Retry button
sends it back, to come back done once it is a video."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Daemon, drop, free_port, nemowatch, rule, wait_for, write_config
from tests.media import Clips, write_random_bytes

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it)
# 10 s of the silences clip read at 1.5 times real time (`paced_ffmpeg`): a render of 7 s,
# long enough for the page (refreshed every second) to show its percent more than once
# however busy the machine, that costs what a tiny clip's render costs (it was upscaled to
# 1080p to take 3-4 s)
PACE = 1.5
# set to a path to keep the screenshot (docs/http-page.png is made so)
SCREENSHOT = "NEMOWATCH_SCREENSHOT"
JOB_SCREENSHOT = "NEMOWATCH_JOB_SCREENSHOT"  # docs/http-job-page.png


def cut_stretches(svg: str) -> list[tuple[str | None, str | None]]:
    shapes = ElementTree.fromstring(svg).iter("{http://www.w3.org/2000/svg}rect")
    return [(s.get("data-start"), s.get("data-end")) for s in shapes if s.get("class") == "cut"]


def percents_until_done(page: Page, name: str, timeout: float = 60.0) -> list[int]:
    """The render percents the page shows for `name` until it is listed as done."""
    seen: list[int] = []
    running = page.locator("#running li.job", has_text=name).locator(".percent")
    done = page.locator("#recent li.done", has_text=name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for text in running.all_text_contents():
            value = int(text.split()[0])
            if not seen or seen[-1] != value:
                seen.append(value)
        if done.count():
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{name} not shown as done; percents seen: {seen}")


def test_the_page_shows_a_drop_rendering_then_done_and_retries_a_failed_job(
    tmp_path: Path, clips: Clips, paced_ffmpeg: Callable[[float], Path]
) -> None:
    paced_ffmpeg(PACE)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clip_rule = rule(tmp_path, settle_seconds=0.2)
    # a quick edit with cuts, for the job page's picture
    cuts_rule = rule(tmp_path, "cuts", edit={"cut_silences": True}, settle_seconds=0.2)
    config = write_config(tmp_path, [clip_rule, cuts_rule], http={"listen": f"127.0.0.1:{port}"})
    inbox = Path(clip_rule["inbox"])
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        wait_for(lambda: daemon.saw("http.listening"), what="http.listening")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 760})
                page.set_default_timeout(30_000)
                page.goto(f"{base}/")
                assert page.locator("table.inboxes").inner_text().count("clips") >= 1

                drop(inbox / "talk.mp4", clips.silences)
                percents = percents_until_done(page, "talk.mp4")
                assert len(percents) >= 2 and percents == sorted(percents), percents
                assert "talk.mp4" in page.locator("#recent li.done").first.inner_text()

                # a job's page: the same picture of the edit as `explain --picture` draws
                drop(Path(cuts_rule["inbox"]) / "pauses.mp4", clips.three_pauses)
                page.locator("#recent li.done a", has_text="pauses.mp4").click()
                page.locator("img.timeline").wait_for()
                job_svg = httpx.get(f"{page.url}/timeline.svg").text
                done = Path(cuts_rule["inbox"]) / "done"  # archived a moment after done
                [archived] = wait_for(lambda: list(done.rglob("pauses.mp4")), what="archived")
                drawn = tmp_path / "explained.svg"
                explained = nemowatch(
                    config, "explain", str(archived), "--rule", "cuts", "--picture", str(drawn)
                )
                assert explained.returncode == 0, explained.stderr
                assert len(cut_stretches(job_svg)) == 3  # its three pauses
                assert cut_stretches(job_svg) == cut_stretches(drawn.read_text(encoding="utf-8"))
                if os.environ.get(JOB_SCREENSHOT):
                    page.screenshot(path=os.environ[JOB_SCREENSHOT], full_page=True)
                metrics = httpx.get(f"{base}/metrics").text
                ended = {
                    (sample.labels["rule"], sample.labels["state"]): sample.value
                    for family in text_string_to_metric_families(metrics)
                    for sample in family.samples
                    if sample.name == "nemowatch_jobs_ended_total"
                }
                assert ended == {("clips", "done"): 1.0, ("cuts", "done"): 1.0}
                page.goto(f"{base}/")

                write_random_bytes(tmp_path / "broken.mp4", size=20_000)
                drop(inbox / "broken.mp4", tmp_path / "broken.mp4")
                failed = page.locator("#recent li.failed", has_text="broken.mp4")
                failed.wait_for()
                assert failed.locator(".error").inner_text()  # its error, in words
                # mended where it waits in failed/ (as a person would, exporting it again)
                [kept] = list((inbox / "failed").rglob("broken.mp4"))
                shutil.copy(clips.basic, kept)
                failed.get_by_role("button", name="Retry").click()
                page.locator("#recent li.done", has_text="broken.mp4").wait_for()
                page.locator("#recent li.failed", has_text="retried").wait_for()

                shot = tmp_path / "http-page.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                if os.environ.get(SCREENSHOT):
                    shutil.copy(shot, os.environ[SCREENSHOT])
            finally:
                browser.close()
    finally:
        assert daemon.stop() == 0, daemon.output()
