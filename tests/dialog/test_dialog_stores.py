"""Every memory store passes the same conformance suite (haneul.dialog.testing)."""

from __future__ import annotations

import pytest

from haneul.dialog.stores import HttpMemoryStore, MemoryStore
from haneul.dialog.testing import MemoryStoreConformance, serve_dialog


class TestSqlStore(MemoryStoreConformance):
    """A SQLite file opened by URL: the store migrates it itself."""

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path):
        self.folder = tmp_path
        self.count = 0

    def make_store(self) -> MemoryStore:
        self.count += 1
        return MemoryStore(f"sqlite:///{self.folder / f'memory-{self.count}.db'}")


class TestSqlStoreOverAnEngine(MemoryStoreConformance):
    """An engine handed in by its owner (as the server does), migrated by that owner."""

    @pytest.fixture(autouse=True)
    def _engine(self, tmp_path):
        from haneul.dialog.stores import DIALOG_MIGRATIONS
        from haneul.platform.db import make_engine, migrate, version_table

        self.engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
        migrate(self.engine)  # the platform's tables, then the plugin's
        migrate(self.engine, DIALOG_MIGRATIONS, version_table=version_table("dialog"))
        self.home = tmp_path
        yield
        self.engine.dispose()

    def make_store(self) -> MemoryStore:
        return MemoryStore(self.engine, home=self.home)


class TestHttpStore(MemoryStoreConformance):
    """The dialog routes served on 127.0.0.1 over their own database; the server runs the operators."""

    slash_in_person = False

    @pytest.fixture(autouse=True)
    def _server(self, tmp_path):
        with serve_dialog(tmp_path / "server-home") as url:
            self.url = url
            self.stores: list[HttpMemoryStore] = []
            yield
            for store in self.stores:
                store.close()

    def make_store(self) -> HttpMemoryStore:
        store = HttpMemoryStore(self.url)
        self.stores.append(store)
        return store
