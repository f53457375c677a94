"""Build the measurement firmware: one ELF per board x firmware settings (variant, float ABI, opt level).

``build_firmware(board, settings)`` compiles the shell (``firmware/shell``), the board layer
(``firmware/board``) and the model runtime (every ``.c`` under ``firmware/runtime`` and
``firmware/kernels``) with arm-none-eabi-gcc. ``board_config.h`` and the linker script are generated
from the catalogue. Builds are cached under ``cache_dir("firmware")`` by a content hash of everything
that affects the ELF: sources and headers, flags, board and family facts, compiler version, the
generated header and linker script.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from costmodel.boards import Board, get_board
from measure_agent.elf import parse_elf
from measure_agent.settings import FLOAT_ABIS, OPT_LEVELS, VARIANTS, FirmwareSettings, SettingsError

from . import cache, flags
from .board_config import board_config_header
from .linker import CODE_TCM_KERNELS, CODE_TCM_REGION, code_tcm, linker_script, stack_bytes_for
from .sources import BOARD_DIR, SHELL_DIR, hash_files, headers, resolve_runtime, runtime_sources
from .toolchain import FirmwareBuildError, compile_all, compiler_version, run

BUILD_FORMAT = 3          # bump when the build recipe changes in a way the hash would not see


@dataclass(frozen=True)
class FirmwareImage:
    path: Path                 # the ELF
    flash_bytes: int           # code + read-only data + .data initialisers
    ram_bytes: int             # .data + .bss + stack (static RAM of the shell/runtime)
    model_ram_bytes: int       # the single model RAM region (plan + arena)
    build_id: str
    board: str = ""
    variant: str = ""
    float_abi: str = ""
    opt_level: str = ""
    runtime: str = ""          # "nn" (firmware/runtime) or "stub"
    ops: tuple[str, ...] = ()  # the plan op kinds the image runs; (): every op of the runtime
    stack_bytes: int = 0
    code_tcm: tuple[str, ...] = ()  # the kernels (object stems) whose code runs from the instruction TCM
    flash_total: int = 0
    sram_total: int = 0
    sections: dict = field(default_factory=dict, compare=False)
    cached: bool = field(default=False, compare=False)

    @property
    def elf(self) -> Path:
        return self.path

    @property
    def settings(self) -> FirmwareSettings:
        return FirmwareSettings(self.variant, self.float_abi, self.opt_level, ops=self.ops)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        d.pop("cached")
        return d


@dataclass(frozen=True)
class FirmwareRecipe:
    """Everything a firmware build uses, decided before anything is compiled."""

    board: Board
    settings: FirmwareSettings
    runtime: str
    header: str                # board_config.h
    ldscript: str              # with every kernel of code_tcm_kernels in the code TCM (the build may keep fewer)
    code_tcm_kernels: tuple[str, ...]
    stack_bytes: int
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    cflags: tuple[str, ...]    # without the build id and include directories
    build_id: str

    @property
    def dirname(self) -> str:
        s = self.settings
        clock = f"-{s.clock_hz // 1000}kHz" if s.clock_hz else ""
        return f"{self.board.name}-{s.variant}-{s.float_abi}-{s.opt_level.lstrip('-')}{clock}-{self.build_id}"


def _checked(board: Board, settings: FirmwareSettings | None) -> FirmwareSettings:
    if settings is None:
        return FirmwareSettings.for_board(board)
    if not isinstance(settings, FirmwareSettings):
        raise TypeError(f"settings must be a FirmwareSettings (FirmwareSettings.for_board(board, variant, "
                        f"float_abi, opt_level)), not {type(settings).__name__}")
    # settings made without for_board are checked against the board too
    return FirmwareSettings.for_board(board, settings.variant, settings.float_abi, settings.opt_level,
                                      settings.clock_hz, settings.ops)


def firmware_recipe(board: Board, settings: FirmwareSettings | None = None, *, runtime: str = "auto",
                    extra_cflags: tuple[str, ...] = ()) -> FirmwareRecipe:
    """The recipe and build id of ``board`` x ``settings`` (needs the compiler for its version)."""
    settings = _checked(board, settings)
    runtime = resolve_runtime(runtime)
    compiler = compiler_version(flags.FIRMWARE_CC)
    stack = stack_bytes_for(board)
    header = board_config_header(board, clock_hz=settings.clock_hz or None)
    tcm_kernels = CODE_TCM_KERNELS.get(settings.variant, ()) if code_tcm(board) else ()
    ldscript = linker_script(board, stack, tcm_kernels)
    rt_sources, rt_includes = runtime_sources(runtime)
    sources = sorted(SHELL_DIR.glob("*.c")) + sorted(BOARD_DIR.glob("*.c")) + rt_sources
    cflags = flags.firmware_cflags(board, settings, runtime, extra_cflags)
    ldflags = flags.firmware_ldflags(board, settings, "link.ld", "firmware.map")
    h = hashlib.sha256()
    h.update(json.dumps({"format": BUILD_FORMAT, "compiler": compiler, "flags": cflags, "ldflags": ldflags,
                         "libs": flags.LINK_LIBS, "runtime": runtime,
                         "board": {k: v for k, v in dataclasses.asdict(board).items() if k != "sources"}},
                        sort_keys=True, default=str).encode())
    h.update(header.encode())
    h.update(ldscript.encode())
    hash_files(h, sources + headers([SHELL_DIR, BOARD_DIR, *rt_includes]))
    return FirmwareRecipe(board, settings, runtime, header, ldscript, tcm_kernels, stack, tuple(sources),
                          (SHELL_DIR, BOARD_DIR, *rt_includes), tuple(cflags), h.hexdigest()[:16])


def _sizes(elf: Path, stack_bytes: int) -> dict:
    image = parse_elf(elf)
    alloc = [s for s in image.sections if s.alloc]
    model = image.symbols.get("__model_ram_end", 0) - image.symbols.get("__model_ram_start", 0)
    return {
        "flash_bytes": sum(s.size for s in alloc if not s.nobits),
        "ram_bytes": sum(s.size for s in alloc if s.writable) + stack_bytes,
        "model_ram_bytes": max(model, 0),
        "sections": {s.name: s.size for s in alloc if s.size},
    }


def build_firmware(board: Board | str, settings: FirmwareSettings | None = None, *, runtime: str = "auto",
                   cache_dir: str | os.PathLike | None = None, force: bool = False, jobs: int | None = None,
                   extra_cflags: tuple[str, ...] = ()) -> FirmwareImage:
    """Build (or fetch from the cache) the firmware ELF of ``board`` with ``settings``.

    ``settings`` defaults to ``FirmwareSettings.for_board(board)``, the measurement's default. Settings
    the board cannot run raise ``SettingsError``; a failing build raises ``FirmwareBuildError``.
    ``cache_dir`` replaces ``cache_dir("firmware")``.
    """
    if isinstance(board, str):
        board = get_board(board)
    recipe = firmware_recipe(board, settings, runtime=runtime, extra_cflags=extra_cflags)
    s = recipe.settings
    final = cache.cache_dir("firmware", cache_dir) / recipe.dirname
    meta = final / "image.json"
    if meta.exists() and not force:
        d = json.loads(meta.read_text())
        d["path"] = final / "firmware.elf"
        d["ops"] = tuple(d.get("ops", ()))
        d["code_tcm"] = tuple(d.get("code_tcm", ()))
        return FirmwareImage(**d, cached=True)

    cc = flags.FIRMWARE_CC
    with cache.staged(final) as tmp:
        gen = tmp / "gen"
        gen.mkdir()
        (gen / "board_config.h").write_text(recipe.header)
        objdir = tmp / "obj"
        objdir.mkdir()
        cflags = [*recipe.cflags, f'-DFW_BUILD_ID="{recipe.build_id}"',
                  *(f"-I{d}" for d in (gen, *recipe.include_dirs))]
        objs = compile_all(cc, list(recipe.sources), cflags, objdir, jobs)
        elf = tmp / "firmware.elf"
        tcm_kernels = _link(recipe, objs, tmp, elf)
        image = FirmwareImage(
            path=final / "firmware.elf", build_id=recipe.build_id, board=board.name, variant=s.variant,
            float_abi=s.float_abi, opt_level=s.opt_level, runtime=recipe.runtime, ops=s.ops, stack_bytes=recipe.stack_bytes,
            code_tcm=tcm_kernels,
            flash_total=board.flash.size, sram_total=board.sram.size, **_sizes(elf, recipe.stack_bytes))
        if image.flash_bytes > board.flash.size:
            raise FirmwareBuildError(f"{board.name}: image of {image.flash_bytes} bytes exceeds flash")
        shutil.rmtree(objdir, ignore_errors=True)
        (tmp / "image.json").write_text(json.dumps(image.to_json(), indent=2))
    return image


def _link(recipe: FirmwareRecipe, objs: list[Path], tmp: Path, elf: Path) -> tuple[str, ...]:
    """Link the objects into ``elf`` with the longest prefix of the recipe's code TCM kernels that fits the TCM
    (kernels grow: one that no longer fits runs from flash, the build does not fail); returns that prefix."""
    board, kernels = recipe.board, recipe.code_tcm_kernels
    for n in range(len(kernels), -1, -1):
        script = recipe.ldscript if n == len(kernels) else linker_script(board, recipe.stack_bytes, kernels[:n])
        (tmp / "link.ld").write_text(script)
        try:
            run([flags.FIRMWARE_CC, *flags.firmware_ldflags(board, recipe.settings, str(tmp / "link.ld"),
                                                            str(tmp / "firmware.map")),
                 *map(str, objs), *flags.LINK_LIBS, "-o", str(elf)], f"link failed for {board.name}")
            return kernels[:n]
        except FirmwareBuildError as exc:
            if n == 0 or f"region `{CODE_TCM_REGION}' overflowed" not in str(exc):
                raise
    raise AssertionError("unreachable")


def matrix_settings(board: Board) -> list[FirmwareSettings]:
    """Every variant x float ABI x opt level the board supports, each once."""
    out = []
    for variant in VARIANTS:
        for float_abi in FLOAT_ABIS:
            for opt_level in OPT_LEVELS:
                try:
                    out.append(FirmwareSettings.for_board(board, variant, float_abi, opt_level))
                except SettingsError:
                    continue
    return out


def build_matrix(board: Board | str, **kw) -> list[FirmwareImage]:
    """Build every firmware the board supports (``kw`` as for :func:`build_firmware`)."""
    if isinstance(board, str):
        board = get_board(board)
    return [build_firmware(board, settings, **kw) for settings in matrix_settings(board)]


def format_build_report(image: FirmwareImage) -> str:
    """Human-readable summary of a build."""
    def kib(n: int) -> str:
        return f"{n / 1024:.1f} KiB"

    flash_pct = f" ({100 * image.flash_bytes / image.flash_total:.1f} % of {kib(image.flash_total)})" \
        if image.flash_total else ""
    ram_pct = f" ({100 * image.ram_bytes / image.sram_total:.1f} % of {kib(image.sram_total)})" \
        if image.sram_total else ""
    lines = [
        f"firmware  {image.board}  variant={image.variant}  float-abi={image.float_abi}  opt={image.opt_level}"
        f"  runtime={image.runtime}",
        f"  elf        {image.path}{'  (cached)' if image.cached else ''}",
        f"  build id   {image.build_id}",
        f"  flash      {image.flash_bytes} bytes = {kib(image.flash_bytes)}{flash_pct}",
        f"  ram        {image.ram_bytes} bytes = {kib(image.ram_bytes)}{ram_pct}"
        f" (.data+.bss + {image.stack_bytes} B stack)",
        f"  model ram  {image.model_ram_bytes} bytes = {kib(image.model_ram_bytes)} (plan + arena)",
    ]
    if image.runtime == "stub":
        lines.append("  WARNING: built with the stub executor (firmware/runtime/executor.c missing)")
    return "\n".join(lines)
