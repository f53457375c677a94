"""Minimal ELF32 little-endian loader: PT_LOAD segments and symbols (no dependency)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

PT_LOAD = 1
EM_ARM = 40


class ElfError(ValueError):
    """Not a loadable 32-bit little-endian Arm ELF file."""


@dataclass(frozen=True)
class Segment:
    paddr: int  # load address (LMA): where a flasher puts the bytes
    vaddr: int
    data: bytes  # file bytes (p_filesz)
    memsz: int
    flags: int


@dataclass(frozen=True)
class ElfImage:
    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, int]


def _symbols(blob: bytes, shoff: int, shentsize: int, shnum: int) -> dict[str, int]:
    syms: dict[str, int] = {}
    if not shoff or not shnum:
        return syms
    sections = []
    for i in range(shnum):
        off = shoff + i * shentsize
        if off + 40 > len(blob):
            return syms
        sections.append(struct.unpack_from("<IIIIIIIIII", blob, off))
    for sh in sections:
        if sh[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[sh[6]] if sh[6] < len(sections) else None
        if strtab is None:
            continue
        str_off, str_size = strtab[4], strtab[5]
        for k in range(sh[5] // 16):
            name_off, value, _size, _info, _other, _shndx = struct.unpack_from("<IIIBBH", blob, sh[4] + 16 * k)
            if not name_off or name_off >= str_size:
                continue
            end = blob.find(b"\0", str_off + name_off)
            name = blob[str_off + name_off : end].decode("ascii", "replace")
            syms.setdefault(name, value)
    return syms


def parse_elf(source: str | Path | bytes | bytearray) -> ElfImage:
    """Read an ELF32 Arm file (path or bytes) into its loadable segments."""
    blob = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    if len(blob) < 52 or blob[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if blob[4] != 1 or blob[5] != 1:
        raise ElfError("not a 32-bit little-endian ELF file")
    (_type, machine, _ver, entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize, shnum,
     _shstrndx) = struct.unpack_from("<HHIIIIIHHHHHH", blob, 16)
    if machine != EM_ARM:
        raise ElfError(f"ELF machine {machine} is not Arm (40)")
    segs = []
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, _align = struct.unpack_from(
            "<IIIIIIII", blob, off
        )
        if p_type != PT_LOAD or p_memsz == 0:
            continue
        data = blob[p_offset : p_offset + p_filesz]
        if len(data) != p_filesz:
            raise ElfError(f"segment {i} runs past the end of the file")
        segs.append(Segment(p_paddr, p_vaddr, data, p_memsz, p_flags))
    return ElfImage(entry, tuple(segs), _symbols(blob, shoff, shentsize, shnum))
