"""The download path of the loaders, against a local HTTP server (no test touches the internet).

The server hands out a small Online Retail workbook zipped as UCI ships it, a SASRec text file, and
broken variants: a body cut short, and nothing at all.
"""
import hashlib
import http.server
import io
import threading
import zipfile

import pandas as pd
import pytest

from seqrec_nb.data import DataUnavailable, cache_dir, download, load_online_retail, load_sasrec_txt

pytestmark = pytest.mark.backend_free      # no Keras model runs here: CI runs this file on TensorFlow only

RAW = pd.DataFrame({
    "InvoiceNo": ["536365", "536365", "C536379", "536380", "536381", "536382"],
    "StockCode": ["85123A", "71053", "85123A", "22752", "71053", "22752"],
    "Description": ["WHITE HANGING HEART", "WHITE METAL LANTERN", "WHITE HANGING HEART", "SET 7 BABUSHKA", "WHITE METAL LANTERN", "SET 7 BABUSHKA"],
    "Quantity": [6, 6, -1, 2, 3, 1],
    "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 08:26", "2010-12-01 09:41", "2010-12-02 10:00", "2010-12-03 11:00", "2010-12-03 12:00"]),
    "UnitPrice": [2.55, 3.39, 2.55, 7.65, 3.39, 7.65],
    "CustomerID": [17850.0, 17850.0, 17850.0, 13047.0, 17850.0, None],
    "Country": ["United Kingdom"] * 6,
})
SHAPE = dict(rows=6, customers=2, products=3)


def workbook_zip() -> bytes:
    book = io.BytesIO()
    RAW.to_excel(book, index=False)
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as f: f.writestr("Online Retail.xlsx", book.getvalue())
    return z.getvalue()


class Server:
    "A loopback HTTP server: `files` maps a path to bytes; `/cut/...` announces more bytes than it sends."
    def __init__(self, files):
        self.files, self.hits = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                name = self.path.removeprefix("/cut")
                if name not in outer.files: return self.send_error(404)
                body = outer.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path.startswith("/cut") else body)

            def log_message(self, *a): pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self): self.httpd.shutdown(); self.httpd.server_close()


@pytest.fixture
def server():
    s = Server({"/online+retail.zip": workbook_zip(), "/Video.txt": b"1 5\n1 7\n2 5\n2 6\n2 7\n"})
    yield s
    s.close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    "A fresh cache, no local data directory, and downloads allowed (they only reach the loopback server)."
    monkeypatch.setenv("SEQREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEQREC_DATA", raising=False)
    monkeypatch.delenv("SEQREC_OFFLINE", raising=False)


def sha(b: bytes) -> str: return hashlib.sha256(b).hexdigest()


def test_online_retail_downloads_parses_once_and_caches(server):
    url, digest = server.url + "/online+retail.zip", sha(server.files["/online+retail.zip"])
    log = load_online_retail(url=url, sha256=digest, expect=SHAPE)
    # anonymous row and the cancellation are gone; extras are kept
    assert log.user_id.tolist() == [13047, 17850, 17850, 17850]
    assert log.item_id.tolist() == ["22752", "85123A", "71053", "71053"]
    assert {"quantity", "price", "country", "description", "invoice"} <= set(log.columns)
    assert sorted(p.name for p in cache_dir().iterdir()) == ["online_retail.parquet"]   # zip parsed, then removed
    again = load_online_retail(url=url, sha256=digest, expect=SHAPE)
    assert len(server.hits) == 1                       # the second call read the cache
    pd.testing.assert_frame_equal(log, again)


def test_hash_mismatch_leaves_no_cache(server):
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        load_online_retail(url=server.url + "/online+retail.zip", sha256="0" * 64, expect=SHAPE)
    assert list(cache_dir().iterdir()) == []


def test_content_check_rejects_a_different_table(server):
    with pytest.raises(ValueError, match="content check failed"):
        load_online_retail(url=server.url + "/online+retail.zip", expect=dict(rows=541_909, customers=4_372, products=4_070))
    assert not (cache_dir() / "online_retail.parquet").exists()


def test_interrupted_download_leaves_no_file(server):
    with pytest.raises(DataUnavailable, match="cut short"):
        download(server.url + "/cut/Video.txt", cache_dir() / "Video.txt", progress=False)
    assert list(cache_dir().iterdir()) == []


def test_unreachable_says_so_in_one_line_naming_seqrec_data(server):
    dead = server.url + "/nothing-here.zip"
    with pytest.raises(DataUnavailable) as e: load_online_retail(url=dead)
    msg = str(e.value)
    assert "SEQREC_DATA" in msg and "\n" not in msg
    assert list(cache_dir().iterdir()) == []


def test_offline_switch_blocks_network(monkeypatch, server):
    monkeypatch.setenv("SEQREC_OFFLINE", "1")
    with pytest.raises(DataUnavailable, match="SEQREC_DATA"): load_sasrec_txt(url=server.url + "/Video.txt")
    assert server.hits == []


def test_sasrec_download_verified(server):
    body = server.files["/Video.txt"]
    log = load_sasrec_txt(url=server.url + "/Video.txt", sha256=sha(body))
    assert log.item_id.tolist() == [5, 7, 5, 6, 7] and log.timestamp.tolist() == [0, 1, 2, 3, 4]
    assert (cache_dir() / "sasrec_games.txt").read_bytes() == body
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        (cache_dir() / "sasrec_games.txt").unlink()
        load_sasrec_txt(url=server.url + "/Video.txt", sha256="1" * 64)
    assert not (cache_dir() / "sasrec_games.txt").exists()


def test_local_copy_wins_over_download(tmp_path, monkeypatch, server):
    local = tmp_path / "data"
    local.mkdir()
    (local / "sasrec_games.txt").write_text("3 1\n3 2\n")
    monkeypatch.setenv("SEQREC_DATA", str(local))
    assert load_sasrec_txt(url=server.url + "/Video.txt").user_id.tolist() == [3, 3]
    assert server.hits == []


def test_seqrec_data_must_be_a_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQREC_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataUnavailable, match="SEQREC_DATA=.*is not a directory"): load_sasrec_txt()
