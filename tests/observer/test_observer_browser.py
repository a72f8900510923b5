"""The web observer in a real browser: headless Chromium driven by Selenium.

The pages render the processes of a running cluster (a child process), a
process spawned there appears without a reload, a process killed there
disappears; the cluster, process, tree and chart pages show what the JSON
says; a token keeps the observer shut. ``JOERL_OBSERVER_SCREENSHOTS=DIR``
saves screenshots of the main pages into DIR (docs/images/ for the README).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cluster, start_cluster

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

WAIT = 15.0


def wait_for(driver: Any, condition: Any, what: str) -> Any:
    """Selenium's wait: poll ``condition(driver)`` with a deadline."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition, f"waited {WAIT}s for {what}")


def names_shown(driver: Any) -> list[str]:
    """The names in the process table (without reading cells that a refresh may replace)."""
    return list(driver.execute_script(
        "return Array.from(document.querySelectorAll('#processes tbody tr td.name')).map(td => td.textContent)"
    ))  # fmt: skip


def screenshot(driver: Any, name: str) -> None:
    target = os.environ.get("JOERL_OBSERVER_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(target) / f"observer-{name}.png"))


def open_page(driver: Any, url: str) -> None:
    """A fresh load of ``url`` (the same URL again, or another hash of it, would not reload)."""
    driver.get("about:blank")
    driver.get(url)


def open_processes(driver: Any, cluster: Cluster, node: str | None = None) -> None:
    open_page(driver, cluster.url + f"#/node/{node or cluster.a}")
    wait_for(driver, lambda d: "idler" in names_shown(d) or "remote_idler" in names_shown(d), "the process table")


def test_the_cluster_page_lists_the_nodes_and_their_links(driver: Any, cluster: Cluster) -> None:
    open_page(driver, cluster.url)
    rows = wait_for(
        driver,
        lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('#nodes-table tr[data-node]')).map(r => r.dataset.node)"
        ),
        "the node table",
    )
    assert rows == [cluster.a, cluster.b]
    assert driver.find_element("id", "observer-node").text == cluster.a
    peer = driver.find_element("css selector", f"#nodes-table tr[data-node='{cluster.b}']").text
    assert "up" in peer and " B" in peer  # its link's state and byte counts
    screenshot(driver, "cluster")


def test_the_processes_of_a_node_render_and_update_live(driver: Any, cluster: Cluster) -> None:
    open_processes(driver, cluster)
    shown = names_shown(driver)
    assert {"idler", "top_sup", "store", "pinger", "ponger", "joerl_introspection"} <= set(shown)
    driver.execute_script("window.__joerl_marker = 42")  # gone if the page reloads
    pid = cluster.spawn("newcomer")
    wait_for(driver, lambda d: "newcomer" in names_shown(d), "the new process to appear")
    row = driver.find_element("css selector", f"#processes tr[data-pid='{pid}']")
    assert "newcomer" in row.text and "waiting" in row.text
    cluster.kill("newcomer")
    wait_for(driver, lambda d: "newcomer" not in names_shown(d), "the killed process to disappear")
    assert driver.execute_script("return window.__joerl_marker") == 42, "the page reloaded"


def test_the_process_table_filters_and_sorts(driver: Any, cluster: Cluster) -> None:
    open_processes(driver, cluster)
    if os.environ.get("JOERL_OBSERVER_SCREENSHOTS"):  # a picture with rates and some history
        wait_for(
            driver,
            lambda d: d.execute_script("return document.querySelectorAll('.chart canvas').length") == 2,
            "charts",
        )
        wait_for(
            driver,
            lambda d: d.execute_script("return fetch('api/history').then(r => r.json()).then(h => h.t.length)") >= 12,
            "some history",
        )
    screenshot(driver, "processes")
    mailbox = driver.find_element("css selector", "#processes th[data-key='mailbox_len']")
    if "sorted" not in mailbox.get_attribute("class"):
        mailbox.click()
    wait_for(driver, lambda d: names_shown(d)[:1] == ["idler"], "idler (3 queued) first by mailbox")
    driver.find_element("id", "filter").send_keys("ping")
    wait_for(driver, lambda d: names_shown(d) == ["pinger"], "the filter to keep only pinger")
    assert "1 of" in driver.find_element("id", "count").text
    driver.find_element("css selector", "#processes th[data-key='name']").click()
    driver.find_element("id", "filter").clear()
    driver.find_element("id", "filter").send_keys("er")
    wait_for(driver, lambda d: len(names_shown(d)) >= 3, "more rows for 'er'")
    names = [n for n in names_shown(driver) if n]
    assert names == sorted(names) or names == sorted(names, reverse=True)


def test_the_charts_draw(driver: Any, cluster: Cluster) -> None:
    open_processes(driver, cluster)
    wait_for(driver, lambda d: len(d.find_elements("css selector", ".chart canvas")) == 2, "two charts")
    wait_for(
        driver,
        lambda d: d.execute_script("return fetch('api/history').then(r => r.json()).then(h => h.t.length)") >= 2,
        "two samples",
    )
    assert "processes" in driver.find_element("id", "chart-processes").text
    wait_for(driver, lambda d: d.find_elements("css selector", "#counters [data-counter='restarts']"), "the counters")
    assert driver.find_element("css selector", "#counters [data-counter='links alive'] b").text == "1"


def test_a_process_page_shows_its_mailbox(driver: Any, cluster: Cluster) -> None:
    open_processes(driver, cluster)
    pid = driver.execute_script(
        "return Array.from(document.querySelectorAll('#processes tbody tr')).find(r => r.querySelector('.name').textContent === 'idler').dataset.pid"
    )
    open_page(driver, cluster.url + f"#/process/{pid}")
    items = wait_for(driver, lambda d: d.find_elements("css selector", "#p-messages li"), "the queued messages")
    assert [i.text for i in items] == [f"('queued', {n})" for n in range(3)]


def test_a_gen_server_page_shows_its_state_links_and_supervisor(driver: Any, cluster: Cluster) -> None:
    open_processes(driver, cluster)
    driver.find_element("css selector", "#processes tbody tr td.name")
    pid = driver.execute_script(
        "return Array.from(document.querySelectorAll('#processes tbody tr')).find(r => r.querySelector('.name').textContent === 'store').dataset.pid"
    )
    open_page(driver, cluster.url + f"#/process/{pid}")
    state = wait_for(driver, lambda d: d.find_elements("id", "p-state"), "the state")[0]
    assert "apple" in state.text and "'total': 2" in state.text
    assert driver.find_element("id", "p-name").text == "store"
    parent = driver.find_element("css selector", "#p-parent a")
    screenshot(driver, "process")
    parent.click()
    wait_for(
        driver,
        lambda d: d.find_elements("id", "p-name") and d.find_element("id", "p-name").text == "top_sup",
        "its supervisor's page",
    )
    assert pid in driver.find_element("id", "process").text  # the supervisor links to its child


def test_the_supervision_tree(driver: Any, cluster: Cluster) -> None:
    open_page(driver, cluster.url + f"#/tree/{cluster.a}")
    wait_for(driver, lambda d: d.find_elements("css selector", "ul.tree > li"), "a tree")
    tree = driver.find_element("css selector", "ul.tree > li")
    assert "top_sup" in tree.find_element("css selector", "span").text
    leaves = tree.find_elements("css selector", "ul > li")
    assert len(leaves) == 2 and any("store" in leaf.text for leaf in leaves)
    screenshot(driver, "tree")


def test_another_nodes_processes_through_this_one(driver: Any, cluster: Cluster) -> None:
    open_processes(driver, cluster, cluster.b)
    assert "remote_idler" in names_shown(driver) and "idler" not in names_shown(driver)
    assert driver.find_element("id", "node-name").text == cluster.b


@pytest.fixture(scope="module")
def guarded() -> Iterator[Cluster]:
    yield from start_cluster("--token", "letmein")


def test_a_token_keeps_the_observer_shut(driver: Any, guarded: Cluster) -> None:
    bare = guarded.url.split("?")[0]
    assert guarded.url.endswith("?token=letmein")
    open_page(driver, bare)
    assert "a token is needed" in driver.find_element("tag name", "body").text
    open_page(driver, guarded.url + f"#/node/{guarded.a}")  # sets the cookie the page's requests carry
    wait_for(driver, lambda d: "idler" in names_shown(d), "the process table behind the token")
