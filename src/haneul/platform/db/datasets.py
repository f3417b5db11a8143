"""Dataset tables: named datasets owned by a team, their immutable versions, the files of each version
and the content-addressed blobs those files point to.

A version lists its files by part (``train``: what sessions and ``pull`` see; ``test``: the hidden test
part only the evaluator reads; ``eval``: the scoring script) with the sha256 of each; the bytes live
once per sha256 in the blob store (:mod:`haneul.platform.datasets`), whatever the number of versions
and datasets that share them. ``digest`` (a sha256 over a version's sorted file list and its metric)
is how a push of an unchanged tree is recognised without comparing file lists.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from haneul.platform.db.models import Base

#: the parts of a version: the visible train part, the hidden test part and the scoring script
PARTS = ("train", "test", "eval")


class Dataset(Base):
    """A dataset: a global name (``haneul dataset pull nsmc`` is unambiguous) owned by one team."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class DatasetVersion(Base):
    """One immutable version (1, 2, 3, ...) of a dataset, with the totals of each part."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(Integer)  # of the train part
    size: Mapped[int] = mapped_column(BigInteger)  # bytes of the train part
    test_files: Mapped[int] = mapped_column(Integer, default=0)
    test_size: Mapped[int] = mapped_column(BigInteger, default=0)
    eval_script: Mapped[str | None] = mapped_column(String(255), nullable=True)  # its file name
    metric: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the key the script reports
    direction: Mapped[str | None] = mapped_column(String(8), nullable=True)  # "max" or "min"
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float)


class DatasetFile(Base):
    """A file of a version: its part, relative path, size and sha256 (the blob holding its bytes)."""

    __tablename__ = "dataset_files"
    __table_args__ = (UniqueConstraint("version_id", "part", "path"), Index("ix_dataset_files_sha256", "sha256"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    part: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class DatasetBlob(Base):
    """A blob in the store, by sha256: written once, deleted when no file of any version refers to it."""

    __tablename__ = "dataset_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


__all__ = ["PARTS", "Dataset", "DatasetBlob", "DatasetFile", "DatasetVersion"]
