"""The operator dashboard: its data per tenant and for admins, and the page itself in a
real headless Chromium (Debian's ``chromium``, driven by Playwright) against a server with
traffic: the charts and tables show the numbers the server counted. A screenshot is saved
in ``tests/artifacts/``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import aiohttp
import openai
import pytest

from modelrouter.config import parse_config
from modelrouter.errors import ProviderError
from modelrouter.security import hash_key
from modelrouter.testing import TEST_CONFIG, FakeProvider

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
CONFIG = (
    TEST_CONFIG
    + f"""
[http]
admin_tenants = ["ops"]

[auth]
enabled = true
[[auth.keys]]
tenant = "acme"
sha256 = "{hash_key("sk-acme")}"
[[auth.keys]]
tenant = "globex"
sha256 = "{hash_key("sk-globex")}"
[[auth.keys]]
tenant = "ops"
sha256 = "{hash_key("sk-ops")}"

[budgets.tenants.acme]
day_usd = 0.5
"""
)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
CODE = [{"role": "user", "content": "Write a Python function that merges two sorted lists."}]


async def data(server, key: str) -> dict:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{server.http.port}/dashboard/data",
            headers={"authorization": f"Bearer {key}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return json.loads(await response.read())


@pytest.fixture
async def busy(modelrouter_server_factory):
    """A server after some traffic from two tenants: answers, one failover, one client error."""
    server = await modelrouter_server_factory(config=parse_config(CONFIG), http_port=-1)
    base = f"http://127.0.0.1:{server.http.port}/v1"
    async with (
        openai.AsyncOpenAI(base_url=base, api_key="sk-acme", max_retries=0) as acme,
        openai.AsyncOpenAI(base_url=base, api_key="sk-globex", max_retries=0) as globex,
    ):
        for _ in range(3):
            await acme.chat.completions.create(model="auto", messages=QUESTION)
        await acme.chat.completions.create(model="auto", messages=CODE)
        # tiny fails: small-coder answers instead (a failover).
        FakeProvider.enqueue(
            "budget", ProviderError("server_error", "boom", retryable=False), "fine"
        )
        await globex.chat.completions.create(model="auto", messages=QUESTION)
        await globex.chat.completions.create(model="large", messages=QUESTION)
        with pytest.raises(openai.BadRequestError):
            await globex.chat.completions.create(model="auto", messages=QUESTION, temperature=9)
    return server


async def test_a_tenant_sees_its_own_data_and_an_admin_sees_everyone(busy):
    acme = await data(busy, "sk-acme")
    assert (acme["scope"], acme["viewer"]) == ("tenant", "acme")
    assert acme["totals"]["requests"] == 4
    assert {d["tenant"] for d in acme["recent"]} == {"acme"}
    assert [b["tenant"] for b in acme["budgets"]] == ["acme"]
    [day] = acme["budgets"][0]["windows"]
    assert day["limit_usd"] == 0.5 and day["spent_usd"] == pytest.approx(acme["totals"]["cost_usd"])
    assert sum(b["requests"] for b in acme["timeline"]["buckets"]) == 4

    everyone = await data(busy, "sk-ops")
    totals = everyone["totals"]
    assert (everyone["scope"], totals["requests"], totals["errors"]) == ("all", 7, 1)
    assert totals["fallbacks"] == 1 and totals["failover_rate"] == pytest.approx(1 / 6)
    assert totals["saving_usd"] > 0
    assert {d["tenant"] for d in everyone["recent"]} == {"acme", "globex"}
    assert [b["tenant"] for b in everyone["budgets"]] == ["acme", "globex", "ops"]
    models = {m["model"]: m["selected"] for m in everyone["models"]}
    assert models["large"] == 1 and sum(models.values()) == totals["decisions"] == 6
    tiers = everyone["tiers"]
    assert sum(c["count"] for c in tiers["counts"]) == tiers["sample"] == 6
    [execute] = [m for m in everyone["latency"] if m["method"] == "Execute"]
    assert execute["requests"] == 7 and 0 < execute["p50_ms"] <= execute["p99_ms"]


async def test_dashboard_data_needs_a_key(busy):
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{busy.http.port}/dashboard/data") as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"]["type"] == "authentication_error"


def chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


async def test_the_page_draws_the_numbers_in_a_real_browser(busy):
    chromium_or_skip()
    from playwright.async_api import async_playwright

    expected = await data(busy, "sk-ops")
    origin = f"http://127.0.0.1:{busy.http.port}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1100})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{origin}/dashboard?refresh=1")
            # Auth is on: the page asks for a key before it shows anything.
            await page.wait_for_selector("#login:not([hidden])")
            await page.fill("#key", "sk-ops")
            await page.click("#login button")
            await page.wait_for_selector("body[data-loaded]")
            assert not await page.is_visible("#login")

            assert await page.text_content("#kpi-requests") == "7"
            assert await page.text_content("#scope") == "all tenants (as ops)"
            assert await page.text_content("#kpi-error-rate") == "14.3%"
            assert await page.text_content("#kpi-failover-rate") == "16.7%"
            # Requests per minute: the stacked bars add up to every call, errors included.
            bars = await page.eval_on_selector_all(
                "#chart-requests rect.bar",
                "rs => rs.map(r => [r.dataset.series, Number(r.dataset.value)])",
            )
            assert sum(v for s, v in bars if s == "ok") == 6
            assert sum(v for s, v in bars if s == "errors") == 1
            cost = await page.eval_on_selector_all(
                "#chart-cost rect.bar", "rs => rs.reduce((a, r) => a + Number(r.dataset.value), 0)"
            )
            assert cost == pytest.approx(expected["totals"]["cost_usd"])
            mix = await page.eval_on_selector_all(
                "#chart-models rect.bar",
                "rs => Object.fromEntries(rs.map(r => [r.dataset.label, Number(r.dataset.value)]))",
            )
            assert mix == {m["model"]: m["selected"] for m in expected["models"]}
            tiers = await page.eval_on_selector_all(
                "#chart-tiers rect.bar", "rs => rs.map(r => Number(r.dataset.value))"
            )
            assert sum(tiers) == 6
            recent = await page.eval_on_selector_all(
                "#recent tbody tr", "rs => rs.map(r => r.dataset.decisionId)"
            )
            assert recent == [d["decision_id"] for d in expected["recent"]]
            budget = await page.eval_on_selector_all(
                "#budgets tbody tr[data-tenant=acme] td", "ds => ds.map(d => d.textContent)"
            )
            assert budget[:3] == ["acme", "day", "$0.50"]
            latency = await page.eval_on_selector_all(
                "#latency tbody tr td:first-child", "ds => ds.map(d => d.textContent)"
            )
            assert "Execute" in latency
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # It refreshes itself: new traffic shows up without a reload.
            async with openai.AsyncOpenAI(
                base_url=f"{origin}/v1", api_key="sk-acme", max_retries=0
            ) as acme:
                await acme.chat.completions.create(model="auto", messages=QUESTION)
            # (Polled from here: the page's CSP forbids the eval wait_for_function uses.)
            for _ in range(100):
                if await page.text_content("#kpi-requests") == "8":
                    break
                await asyncio.sleep(0.1)
            assert await page.text_content("#kpi-requests") == "8"

            # A tenant's key shows that tenant only.
            tenant_page = await browser.new_page()
            await tenant_page.goto(f"{origin}/dashboard")
            await tenant_page.fill("#key", "sk-globex")
            await tenant_page.click("#login button")
            await tenant_page.wait_for_selector("body[data-loaded]")
            assert await tenant_page.text_content("#kpi-requests") == "3"
            tenants = await tenant_page.eval_on_selector_all(
                "#recent tbody tr td:nth-child(2)", "ds => [...new Set(ds.map(d => d.textContent))]"
            )
            assert tenants == ["globex"]
        finally:
            await browser.close()
    # Offline: nothing but this server was asked for anything.
    assert requested and all(url.startswith(origin) for url in requested), requested
    assert errors == []
