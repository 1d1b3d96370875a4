"""Join the raw media and the validated manifests into one data root (artifact plumbing only)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def assemble_root(raw: Input[Dataset], validated: Input[Dataset], root: Output[Dataset]) -> str:
    """``root`` = the media and ``corpus.json`` of ``raw`` + the ``validated/`` folder of ``validated``.

    Every later step of the library reads one *validated data root* (media + ``validated/``),
    while :func:`components.validate_data` leaves the media in ``raw``. Files are hard-linked
    (copied only across filesystems), so this costs no disk locally. Returns the data version.
    """
    import shutil
    from pathlib import Path

    from clipguard.core.io import link_or_copy
    from clipguard.data.schema import VALIDATED_DIR, data_version

    out = Path(root.path)
    skip = shutil.ignore_patterns(VALIDATED_DIR)
    shutil.copytree(raw.path, out, copy_function=link_or_copy, ignore=skip, dirs_exist_ok=True)
    shutil.copytree(Path(validated.path) / VALIDATED_DIR, out / VALIDATED_DIR, copy_function=link_or_copy, dirs_exist_ok=True)
    version = data_version(out)
    root.metadata.update({"data_version": version, **{k: v for k, v in raw.metadata.items() if k != "data_version"}})
    return version
