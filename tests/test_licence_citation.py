"""LICENSE is Apache-2.0 (Keras' own text) and CITATION.cff is valid CFF 1.2.0
citing the two papers."""

import datetime
import importlib.metadata
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
# The original distribution's address, from the package's metadata (its one
# home), which CITATION.cff and the credits must repeat. Only compared as
# text: no test fetches it (tests never leave 127.0.0.1).
with open(REPO / "pyproject.toml", "rb") as _f:
    ORIGINAL_REPOSITORY = tomllib.load(_f)["project"]["urls"]["Original distribution"]

# From the CFF 1.2.0 schema (citation-file-format.github.io/1.2.0/schema).
CFF_REQUIRED = {"cff-version", "message", "title", "authors"}
CFF_TOP_KEYS = {
    "abstract", "authors", "cff-version", "commit", "contact", "date-released",
    "doi", "identifiers", "keywords", "license", "license-url", "message",
    "preferred-citation", "references", "repository", "repository-artifact",
    "repository-code", "title", "type", "url", "version"}
REFERENCE_REQUIRED = {"authors", "title", "type"}
# The reference keys this file uses, all defined by the schema.
REFERENCE_KEYS = {
    "authors", "collection-title", "collection-type", "conference", "doi", "end",
    "month", "notes", "publisher", "repository-code", "start", "title", "type",
    "volume", "year"}
PERSON_KEYS = {"family-names", "given-names"}
ENTITY_KEYS = {"name", "city", "country"}
DOI = re.compile(r"^10\.\d{4,9}(\.\d+)?/[A-Za-z0-9:/_;\-\.\(\)\[\]\\]+$")


def load_cff():
    return yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))


def check_authors(authors):
    assert isinstance(authors, list) and authors
    for author in authors:
        keys = set(author)
        assert keys == {"name"} or keys == PERSON_KEYS, author
        assert all(isinstance(v, str) and v for v in author.values())


def check_reference(ref):
    assert REFERENCE_REQUIRED <= set(ref) <= REFERENCE_KEYS, sorted(ref)
    check_authors(ref["authors"])
    for key in ("conference", "publisher"):
        if key in ref:
            assert "name" in ref[key] and set(ref[key]) <= ENTITY_KEYS
    if "doi" in ref:
        assert DOI.match(ref["doi"]), ref["doi"]
    if "month" in ref:
        assert 1 <= ref["month"] <= 12


def test_citation_cff_is_valid_cff_1_2_0():
    cff = load_cff()
    assert CFF_REQUIRED <= set(cff) <= CFF_TOP_KEYS, sorted(cff)
    assert cff["cff-version"] == "1.2.0"  # a string, not the float 1.2
    assert cff["type"] == "software"
    assert cff["license"] == "Apache-2.0"
    check_authors(cff["authors"])
    check_reference(cff["preferred-citation"])
    for ref in cff["references"]:
        check_reference(ref)


def test_citation_cff_names_the_package_version_and_its_release_date():
    cff = load_cff()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert cff["version"] == version
    assert datetime.date.fromisoformat(str(cff["date-released"])) <= datetime.date.today()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"version = {{{version}}}" in readme  # the BibTeX block


def test_citation_cff_cites_both_papers():
    cff = load_cff()
    preferred = cff["preferred-citation"]
    assert preferred["title"] == (
        "Image Aesthetics Assessment Using Fully Convolutional Neural Networks")
    assert [a["family-names"] for a in preferred["authors"]] == ["Apostolidis", "Mezaris"]
    assert preferred["doi"] == "10.1007/978-3-030-05710-7_30"
    assert (preferred["year"], preferred["volume"]) == (2019, 11295)
    by_doi = {ref.get("doi"): ref for ref in cff["references"]}
    assert by_doi["10.1007/978-3-030-05710-7_30"] == preferred
    long = by_doi["10.1109/CVPR.2015.7298965"]
    assert long["title"] == "Fully Convolutional Networks for Semantic Segmentation"
    assert [a["family-names"] for a in long["authors"]] == ["Long", "Shelhamer", "Darrell"]
    assert (long["year"], long["start"], long["end"]) == (2015, 3431, 3440)
    original = [r for r in cff["references"] if r["type"] == "software"]
    assert [r["repository-code"] for r in original] == [ORIGINAL_REPOSITORY]


def test_licence_is_keras_apache_2_0_text():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    header, _, body = text.partition("\n\n")
    assert header == "Copyright 2026 The FCN in Keras authors"
    keras_licence = importlib.metadata.distribution("keras").read_text("licenses/LICENSE")
    assert "Apache License" in keras_licence and "Version 2.0, January 2004" in keras_licence
    assert body.strip() == keras_licence.strip()
    assert body.count("END OF TERMS AND CONDITIONS") == 1


def test_credits_page_names_the_original_and_the_papers():
    text = (REPO / "docs" / "credits.md").read_text(encoding="utf-8")
    assert urlsplit(ORIGINAL_REPOSITORY).scheme == "https"
    assert ORIGINAL_REPOSITORY.endswith("/bmezaris/fully_convolutional_networks")
    assert ORIGINAL_REPOSITORY in text
    assert "independent reimplementation" in text
    assert "none of the original distribution's code" in text
    for doi in ("10.1007/978-3-030-05710-7_30", "10.1109/CVPR.2015.7298965"):
        assert doi in text
