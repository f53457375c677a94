"""The one ELF reader of the project: 32-bit little-endian Arm files, no dependency.

Used by the virtual board's loader (loadable segments with their load address, the entry point,
symbols) and by the firmware build's size report (sections with type, flags, address and size, and
the linker script's symbols). Every offset and count read from the file is checked against its size:
a truncated or malformed file raises :class:`ElfError`, never ``struct.error`` or ``IndexError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

EM_ARM = 40
PT_LOAD = 1
SHT_NULL, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 0, 2, 3, 8
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4

_EHDR = struct.Struct("<HHIIIIIHHHHHH")  # e_type .. e_shstrndx, after the 16-byte e_ident
_PHDR = struct.Struct("<IIIIIIII")
_SHDR = struct.Struct("<IIIIIIIIII")
_SYM = struct.Struct("<IIIBBH")


class ElfError(ValueError):
    """Not a well-formed 32-bit little-endian Arm ELF file."""


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header and its file bytes."""

    paddr: int  # load address (LMA): where a flasher puts the bytes
    vaddr: int
    data: bytes  # file bytes (p_filesz)
    memsz: int
    flags: int


@dataclass(frozen=True)
class Section:
    """A section header (``offset`` is its position in the file; NOBITS sections occupy none)."""

    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int

    @property
    def alloc(self) -> bool:
        """Occupies memory on the target."""
        return bool(self.flags & SHF_ALLOC)

    @property
    def writable(self) -> bool:
        return bool(self.flags & SHF_WRITE)

    @property
    def nobits(self) -> bool:
        """No bytes in the file (.bss)."""
        return self.type == SHT_NOBITS


@dataclass(frozen=True)
class ElfImage:
    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, int]  # first definition of each name wins
    sections: tuple[Section, ...] = ()

    def section(self, name: str) -> Section:
        """The first section called ``name`` (KeyError if there is none)."""
        for sec in self.sections:
            if sec.name == name:
                return sec
        raise KeyError(name)


def _table(blob: bytes, what: str, offset: int, count: int, entsize: int, minimum: int) -> list[int]:
    """Offsets of ``count`` entries of ``entsize`` bytes from ``offset``, all inside ``blob``."""
    if count == 0:
        return []
    if entsize < minimum:
        raise ElfError(f"{what} entries are {entsize} bytes, at least {minimum} expected")
    if offset + count * entsize > len(blob):
        raise ElfError(f"{what} table ({count} x {entsize} bytes at {offset}) runs past the end of the file "
                       f"({len(blob)} bytes)")
    return [offset + i * entsize for i in range(count)]


def _cstr(blob: bytes, table: tuple[int, int], index: int, what: str) -> str:
    """NUL-terminated string ``index`` bytes into the string table at (file offset, size)."""
    start, size = table
    if index >= size:
        raise ElfError(f"{what}: name offset {index} outside its string table ({size} bytes)")
    end = blob.find(b"\0", start + index, start + size)
    if end < 0:
        raise ElfError(f"{what}: name at {index} is not NUL-terminated inside its string table")
    return blob[start + index:end].decode("utf-8", "replace")


def parse_elf(source: str | Path | bytes | bytearray) -> ElfImage:
    """Read an ELF32 Arm file (path or bytes): entry point, loadable segments, sections, symbols."""
    blob = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    if len(blob) < 16 + _EHDR.size or blob[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if blob[4] != 1 or blob[5] != 1:
        raise ElfError("not a 32-bit little-endian ELF file")
    (_type, machine, _ver, entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize, shnum,
     shstrndx) = _EHDR.unpack_from(blob, 16)
    if machine != EM_ARM:
        raise ElfError(f"ELF machine {machine} is not Arm ({EM_ARM})")

    segments = []
    for i, off in enumerate(_table(blob, "program header", phoff, phnum, phentsize, _PHDR.size)):
        p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, _align = _PHDR.unpack_from(blob, off)
        if p_type != PT_LOAD or p_memsz == 0:
            continue
        if p_offset + p_filesz > len(blob):
            raise ElfError(f"segment {i} runs past the end of the file")
        if p_filesz > p_memsz:
            raise ElfError(f"segment {i} has more file bytes ({p_filesz}) than memory bytes ({p_memsz})")
        segments.append(Segment(p_paddr, p_vaddr, blob[p_offset:p_offset + p_filesz], p_memsz, p_flags))

    headers = [_SHDR.unpack_from(blob, off)
               for off in _table(blob, "section header", shoff if shnum else 0, shnum, shentsize, _SHDR.size)]
    for i, (_n, typ, _f, _a, offset, size, *_rest) in enumerate(headers):
        if typ not in (SHT_NULL, SHT_NOBITS) and offset + size > len(blob):
            raise ElfError(f"section {i} ({size} bytes at {offset}) runs past the end of the file")

    def strtab(index: int, what: str) -> tuple[int, int]:
        if not 0 < index < len(headers) or headers[index][1] != SHT_STRTAB:
            raise ElfError(f"{what}: section {index} is not a string table")
        return headers[index][4], headers[index][5]

    names = strtab(shstrndx, "section names") if headers and shstrndx else None
    sections = tuple(
        Section(_cstr(blob, names, h[0], f"section {i}") if names else "", h[1], h[2], h[3], h[4], h[5])
        for i, h in enumerate(headers))

    symbols: dict[str, int] = {}
    for i, (_n, typ, _f, _a, offset, size, link, _info, _align, entsize) in enumerate(headers):
        if typ != SHT_SYMTAB:
            continue
        strings = strtab(link, f"symbol table {i}")
        entsize = entsize or _SYM.size
        if entsize < _SYM.size:
            raise ElfError(f"symbol table {i}: entries of {entsize} bytes, at least {_SYM.size} expected")
        for k in range(size // entsize):
            name_off, value, _size, _info, _other, _shndx = _SYM.unpack_from(blob, offset + k * entsize)
            if name_off:
                symbols.setdefault(_cstr(blob, strings, name_off, f"symbol {k}"), value)
    return ElfImage(entry, tuple(segments), symbols, sections)
