"""The web page rendered from a seeded database: family, leaderboard, gallery."""

from __future__ import annotations

import io
import re

from PIL import Image

from db.web_queries import set_gallery
from tests.web.seed import ALICE, BOB, HIDDEN_GUILD, MEMBERS, SHOWN_GUILD


async def text(client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status == status, (path, response.status)
    return await response.text()


def gallery_page_ids(html: str) -> set[int]:
    return {int(m) for m in re.findall(r'id="page-(\d+)"', html)}


# ------------------------------------------------------------------------- family


async def test_family_shows_every_member_card_and_growing_up(client):
    html = await text(client, "/")
    for name, emoji in MEMBERS:
        assert f'id="member-{name}"' in html
        assert f'<span class="emoji">{emoji}</span> {name}' in html
        assert f"the {name} collection" in html  # what it grew up on
        assert f'src="/family/files/{name}_growing_up.gif"' in html
        assert f"<strong>{name}</strong>" in html  # the card, rendered
    gif = await client.get("/family/files/openmoji_growing_up.gif")
    assert gif.status == 200 and gif.content_type == "image/gif"
    assert Image.open(io.BytesIO(await gif.read())).n_frames == 2


async def test_family_says_what_a_retrained_member_learned_since(client, family_dir):
    import json

    assert "fine-tuned" not in await text(client, "/")
    manifest = family_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    data["members"][0].update(version=3, extra={"parent_version": 2, "votes": 120})
    manifest.write_text(json.dumps(data))  # a promotion rewrites the manifest
    html = await text(client, "/")
    assert "version 3" in html and "fine-tuned from version 2 on 120 votes" in html


async def test_family_card_is_escaped_and_shows_only_its_own_pictures(client):
    html = await text(client, "/")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>not bold</b>" not in html and "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert "example.com" not in html  # a card does not pull pictures from elsewhere
    assert "<h3>Data</h3>" in html


async def test_family_files_serves_pictures_only(client):
    assert (await client.get("/family/files/openmoji.safetensors")).status == 404
    assert (await client.get("/family/files/manifest.json")).status == 404
    assert (await client.get("/family/files/..%2Fmanifest.json")).status == 404
    assert (await client.get("/family/files/nothere.gif")).status == 404


# -------------------------------------------------------------------- leaderboard


def board_members(html: str) -> list[str]:
    return re.findall(r'<td class="who">\S+ (\w+)</td>', html)


async def test_leaderboard_overall_ranks_members_with_intervals_and_chart(client, seeded):
    html = await text(client, "/leaderboard")
    order = board_members(html)
    assert order[0] == "openmoji" and order[-1] == "artworks", order
    assert sorted(order) == sorted(name for name, _ in MEMBERS)
    assert "95% interval" in html and "What the number means" in html
    assert re.search(r'class="range">\d+–\d+<', html)
    assert 'src="data:image/png;base64,' in html


async def test_leaderboard_per_server_only_for_servers_that_opened_their_page(client, seeded):
    html = await text(client, f"/leaderboard/{SHOWN_GUILD}")
    assert "<h2>Family</h2>" in html and board_members(html)
    assert "Secret club" not in html  # not in the server list either
    await text(client, f"/leaderboard/{HIDDEN_GUILD}", status=404)


async def test_leaderboard_without_votes_says_so(client):
    assert "No votes yet" in await text(client, "/leaderboard")


# ------------------------------------------------------------------------ gallery


async def test_gallery_shows_only_servers_that_turned_it_on(client, seeded):
    html = await text(client, "/gallery")
    assert gallery_page_ids(html) == set(seeded.pages[SHOWN_GUILD])
    assert "Secret club" not in html
    page = seeded.pages[SHOWN_GUILD][1]
    coloring = seeded.colorings[page][0]
    for path in (f"/images/page/{page}/thumb.webp", f"/images/coloring/{coloring}/large.webp"):
        response = await client.get(path)
        assert response.status == 200 and response.content_type == "image/webp"
        assert max(Image.open(io.BytesIO(await response.read())).size) <= 360
    hidden = seeded.pages[HIDDEN_GUILD][0]
    assert (await client.get(f"/images/page/{hidden}/thumb.webp")).status == 404
    assert (await client.get(
        f"/images/coloring/{seeded.colorings[hidden][0]}/thumb.webp")).status == 404
    await text(client, f"/gallery/{HIDDEN_GUILD}", status=404)


async def test_gallery_shows_vote_counts(client, seeded, database):
    page = seeded.pages[SHOWN_GUILD][0]
    html = await text(client, f"/gallery/{SHOWN_GUILD}")
    article = html.split(f'id="page-{page}"')[1].split("</article>")[0]
    counts = [int(n) for n in re.findall(r'class="votes">(\d+)<', article)]
    live = await database.live_votes(page_id=page)
    assert sum(counts) == len(live) == 4
    assert 'class="fav"' in article  # the favourite is marked


async def test_forget_takes_pages_out_of_the_gallery_at_once(client, seeded, database):
    before = gallery_page_ids(await text(client, "/gallery"))
    alices = set(seeded.by_author[ALICE]) & before
    assert alices
    thumb = f"/images/page/{min(alices)}/thumb.webp"
    first = await client.get(thumb)  # and now in the thumbnail cache
    assert first.status == 200
    etag = {"If-None-Match": first.headers["ETag"]}
    assert (await client.get(thumb, headers=etag)).status == 304  # a browser's revalidation

    await database.forget_user(ALICE)

    after = gallery_page_ids(await text(client, "/gallery"))
    assert after == before - alices
    assert after & set(seeded.by_author[BOB])
    assert (await client.get(thumb)).status == 404
    assert (await client.get(thumb, headers=etag)).status == 404  # no 304 for a forgotten page


async def test_gallery_disable_hides_the_server(client, seeded, database):
    await set_gallery(database, SHOWN_GUILD, False)
    html = await text(client, "/gallery")
    assert gallery_page_ids(html) == set()
    assert "No server has turned the gallery on yet" in html
    page = seeded.pages[SHOWN_GUILD][0]
    assert (await client.get(f"/images/page/{page}/thumb.webp")).status == 404


async def test_pages_run_no_script(client, seeded):
    for path in ("/", "/leaderboard", "/gallery", "/nothing-here"):
        response = await client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "<script" not in await response.text()


async def test_unknown_address_is_a_small_html_page(client):
    response = await client.get("/nothing-here")
    assert response.status == 404 and "text/html" in response.content_type


async def test_gallery_pages_through_older_pages(client, seeded, monkeypatch):
    monkeypatch.setattr("web.routes.PAGES_PER_SCREEN", 3)
    first = await text(client, "/gallery")
    second = await text(client, "/gallery?page=2")
    assert len(gallery_page_ids(first)) == 3 and 'href="?page=2"' in first
    assert gallery_page_ids(second) == set(seeded.pages[SHOWN_GUILD]) - gallery_page_ids(first)
    assert 'href="?page=1"' in second and 'href="?page=3"' not in second
