from pathlib import Path

import pytest

from proxy.cassette.paths import CassettePathError, resolve_cassette


def test_names_inside_the_folder_resolve(tmp_path: Path):
    assert resolve_cassette("a.yaml", tmp_path) == tmp_path.resolve() / "a.yaml"
    assert resolve_cassette("sub/../b.yaml", tmp_path) == tmp_path.resolve() / "b.yaml"


@pytest.mark.parametrize("name", ["../x.yaml", "sub/../../x.yaml", "/etc/passwd", "", "a\x00b"])
def test_escaping_names_are_refused(tmp_path: Path, name: str):
    with pytest.raises(CassettePathError):
        resolve_cassette(name, tmp_path)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path):
    folder = tmp_path / "cassettes"
    folder.mkdir()
    (folder / "link").symlink_to(tmp_path)
    with pytest.raises(CassettePathError, match="escapes"):
        resolve_cassette("link/secret.yaml", folder)
