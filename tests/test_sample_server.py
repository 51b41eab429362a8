"""The sample server: several sites behind one local port, chosen by host name, with validators."""

import httpx
import pytest

from pipeline.sample import SAMPLE_SITES, SampleServer


@pytest.fixture
def sites(tmp_path):
    press = tmp_path / "pressrum.example"
    (press / "pressmeddelanden").mkdir(parents=True)
    (press / "index.html").write_text("<h1>Pressrum</h1>", encoding="utf-8")
    (press / "pressmeddelanden" / "nya-hyresratter-i-rosengard.html").write_text(
        "<h1>Nya hyresrätter i Rosengård</h1>", encoding="utf-8"
    )
    (press / "rss.xml").write_text("<rss version='2.0'><channel/></rss>", encoding="utf-8")
    blog = tmp_path / "bloggen.example"
    blog.mkdir()
    (blog / "index.html").write_text("<h1>Innovationslabbets dagbok</h1>", encoding="utf-8")
    (tmp_path / "hemlig.txt").write_text("utanför webbroten", encoding="utf-8")
    return tmp_path


@pytest.fixture
def server(sites):
    with SampleServer(sites) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(transport=server.transport()) as client:
        yield client


def test_each_host_name_gets_its_own_site_on_the_same_port(client):
    press = client.get("http://pressrum.example/")
    blog = client.get("http://bloggen.example/")
    assert "Pressrum" in press.text
    assert "dagbok" in blog.text
    assert press.url.host == "pressrum.example", "the crawler keeps seeing the public host name"


def test_files_are_served_with_swedish_text_and_a_content_type(client):
    page = client.get("http://pressrum.example/pressmeddelanden/nya-hyresratter-i-rosengard.html")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "Rosengård" in page.text
    feed = client.get("http://pressrum.example/rss.xml")
    assert feed.headers["content-type"].startswith("application/xml")


def test_conditional_get_answers_304_without_a_body(client):
    first = client.get("http://pressrum.example/")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    matching = client.get("http://pressrum.example/", headers={"If-None-Match": etag})
    assert matching.status_code == 304
    since = client.get("http://pressrum.example/", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    assert since.content == b""
    other = client.get("http://pressrum.example/", headers={"If-None-Match": '"annan"'})
    assert other.status_code == 200


def test_unknown_pages_hosts_and_escapes_are_404(server, client):
    assert client.get("http://pressrum.example/finns-inte.html").status_code == 404
    direct = httpx.get(f"http://127.0.0.1:{server.port}/", headers={"Host": "okand.example"})
    assert direct.status_code == 404
    assert client.get("http://pressrum.example/../hemlig.txt").status_code == 404
    assert client.get("http://pressrum.example/%2e%2e/hemlig.txt").status_code == 404


def test_the_bundled_sample_has_the_three_site_families():
    if not SAMPLE_SITES.exists():
        pytest.fail(f"{SAMPLE_SITES} is missing: the sample sites are part of the repository")
    hosts = {p.name for p in SAMPLE_SITES.iterdir() if p.is_dir()}
    assert {"pressrum.example", "bloggen.example", "kommun.example"} <= hosts
