"""The report in a real browser: opened from a file:// URL with no network, the equity chart draws."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.support import REPO

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

SAMPLE = REPO / "sample_data"
DEMO_COINS = REPO / "controlpanel" / "demo" / "coins.json"


@pytest.fixture
def report(tmp_path):
    """Made before the browser starts: Playwright's sync API runs an event loop in this
    thread, and Django refuses database calls from inside one."""
    out = tmp_path / "report.html"
    call_command("backtest", data=SAMPLE, coins=DEMO_COINS, out=out, no_progress=True)
    return out


def test_the_report_opens_offline_and_shows_the_equity_chart(tmp_path, report, chromium):
    out = report
    context = chromium.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    page = context.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(out.as_uri())
    page.wait_for_function("window.equityChart && window.equityChart.data.datasets[0].data.length > 0")

    points = page.evaluate("window.equityChart.data.datasets[0].data.length")
    assert points == 360  # one equity point a minute over the sample's six hours
    # The canvas really has a drawing on it: pixels of the equity line's colour.
    line_pixels = page.evaluate(
        """() => {
        const canvas = document.getElementById("equity-chart");
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let count = 0;
        for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i] < 80 && pixels[i + 1] > 80 && pixels[i + 2] > 200 && pixels[i + 3] > 0) count++;
        }
        return count;
    }"""
    )
    assert line_pixels > 100
    assert page.locator("h2", has_text="Per coin").is_visible()
    assert requests == [out.as_uri()] and errors == []
    shot = tmp_path / "report.png"
    page.locator(".chart").first.screenshot(path=str(shot))
    assert shot.stat().st_size > 5_000
    context.close()
