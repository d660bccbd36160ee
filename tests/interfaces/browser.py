"""What a page shows in headless Chromium (Debian's ``chromium``): the text a reader sees, read back with the
DOM's ``innerText``, which leaves out what is not rendered (the body of a closed ``<details>``, rows hidden by
the page's script or by its CSS).

``shown(html, tmp)`` loads the page from a file, lets its own script run, then a probe appended after it
records ``document.body.innerText`` (and, for each CSS selector in ``clicks``, clicks that element and records
the text again) into ``<pre>`` elements that ``--dump-dom`` returns. A missing Chromium fails the test.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

_PROBE = """
<script>
(function(){
  function record(){var p=document.createElement('pre');p.className='azv-probe';
    p.hidden=true;
    p.textContent=document.body.innerText;document.body.appendChild(p);}
  record();
  CLICKS.forEach(function(sel){var el=document.querySelector(sel);if(el){el.click();}record();});
})();
</script>
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed for this test: apt-get install -y chromium")


def dump_dom(page: Path, profile: Path, fragment: str = "") -> str:
    proc = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout


def shown(page_html: str, tmp: Path, *, clicks: tuple[str, ...] = (), fragment: str = "") -> list[str]:
    """The page's visible text, then after each click; a notebook fragment is wrapped in a bare page."""
    if "<body" not in page_html:
        page_html = f"<!DOCTYPE html><html><head><meta charset=utf-8></head><body>{page_html}</body></html>"
    probe = _PROBE.replace("CLICKS", json.dumps(list(clicks)))
    page = tmp / "page.html"
    page.write_text(page_html.replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = dump_dom(page, tmp / "chromium-profile", fragment)
    texts = [html.unescape(t) for t in re.findall(r'<pre class="azv-probe" hidden="">(.*?)</pre>', dom, re.S)]
    assert len(texts) == 1 + len(clicks), "the probe did not run"
    return texts
