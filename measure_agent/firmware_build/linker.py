"""The GNU ld script of the firmware, from the board's memory map in the catalogue, and the board's
flash slot grid (where plans are programmed when their constants live in flash).

The slot grid is fixed per board: the flash's erase units (``flash_layout`` in boards.toml) grouped from
the flash base into at most :data:`MAX_SLOTS` slots of at least ``flash size / MAX_SLOTS`` bytes (a page
group on the L4/G0/L5/F1, a sector or a few small sectors on the F4/F7). The slots a firmware can use
are those at or above the end of its image (``__flash_slots_start``, computed by the linker from this
grid): a larger firmware loses the lowest slots, the others keep their place, contents and erase counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from costmodel.boards import Board

#: the most slots a board's flash is divided into (the slot header keeps one erase counter per slot)
MAX_SLOTS = 32
#: bytes of the slot header in front of a plan in flash (firmware/PROTOCOL.md "Flash slots")
SLOT_HEADER_BYTES = 256


@dataclass(frozen=True)
class FlashSlot:
    """One slot of the grid: ``size`` bytes from ``base``, made of whole erase units
    ``units`` = ((address, bytes, number, bank), ...)."""

    index: int
    base: int
    size: int
    units: tuple[tuple[int, int, int, int], ...]

    @property
    def end(self) -> int:
        return self.base + self.size


def flash_slots(board: Board) -> tuple[FlashSlot, ...]:
    """The board's slot grid (empty when the catalogue has no flash layout for it)."""
    target = board.flash.size // MAX_SLOTS
    slots: list[FlashSlot] = []
    cur: list[tuple[int, int, int, int]] = []
    size = 0

    def close() -> None:
        slots.append(FlashSlot(len(slots), cur[0][0], size, tuple(cur)))
        cur.clear()

    for group in board.erase_units:
        for i in range(group.count):
            cur.append((group.base + i * group.bytes, group.bytes, group.number + i, group.bank))
            size += group.bytes
            if size >= target:
                close()
                size = 0
    if cur:
        close()
    if len(slots) > MAX_SLOTS:
        raise ValueError(f"{board.name}: {len(slots)} flash slots, at most {MAX_SLOTS}")
    return tuple(slots)


def usable_slots(board: Board, image_end: int) -> tuple[FlashSlot, ...]:
    """The slots above a firmware image ending at address ``image_end``."""
    return tuple(s for s in flash_slots(board) if s.base >= image_end)


def _slots_start_expr(board: Board) -> str:
    """The first slot boundary at or above the image end, as a GNU ld expression (the flash end if none)."""
    expr = f"0x{board.flash.end:08X}"
    for slot in reversed(flash_slots(board)):
        if slot.base > board.flash.base:
            expr = f"(__flash_image_end <= 0x{slot.base:08X} ? 0x{slot.base:08X} : {expr})"
    return expr


#: the hot kernels of each runtime variant, hottest first: the objects whose code runs from an instruction TCM
#: (the F7's 16 KB ITCM RAM: zero wait state, no I-cache misses) where the board has one (sources.py names object
#: files NNN_<stem>.o). The build keeps the longest prefix of this list that fits (firmware.py). None for the
#: reference variant: its kernels call helpers in other objects per element, and a call between the ITCM and
#: the flash goes through a long-branch veneer (measured: 0.2-0.5 % slower).
CODE_TCM_KERNELS = {
    "simd": ("conv2d_s8_simd", "depthwise_conv2d_s8_simd"),
    "reference": (),
}
#: the first bytes of a code TCM at address 0 stay empty: no function may have the address NULL
CODE_TCM_RESERVED = 16
#: the linker's name of the code TCM region (its overflow message names it)
CODE_TCM_REGION = "CODETCM"


def code_tcm(board: Board):
    """The board's instruction TCM outside the flash and SRAM regions the firmware links to (F7 ITCM RAM at
    0x0000 0000), or None."""
    for t in board.tcm:
        if t.instructions and not board.sram.contains(t.base) and not board.flash.contains(t.base):
            return t
    return None


def stack_bytes_for(board: Board) -> int:
    """Stack of the shell and runtime at the top of SRAM: 8 KiB, 3 KiB below 64 KiB of SRAM."""
    return 8192 if board.sram.size >= 64 * 1024 else 3072


def _code_tcm_parts(board: Board, kernels: tuple[str, ...]) -> tuple[str, str]:
    """(MEMORY line, output section) that run ``kernels`` (object stems) from the board's code TCM; empty
    without one. The section comes before .text so that its patterns take those objects' code first; its
    load image follows the vector table in flash, and Reset_Handler copies it (``_sitcm`` .. ``_eitcm``
    from ``_siitcm``)."""
    tcm = code_tcm(board)
    if tcm is None:
        return "", ""
    origin = tcm.base + (CODE_TCM_RESERVED if tcm.base == 0 else 0)
    memory = f"  {CODE_TCM_REGION} (rx) : ORIGIN = 0x{origin:08X}, LENGTH = {tcm.end - origin}\n"
    inputs = " ".join(f"*_{k}.o(.text .text.*)" for k in kernels)
    section = (f"  .itcm : {{ . = ALIGN(4); _sitcm = .; {inputs} . = ALIGN(4); _eitcm = .; }} > {CODE_TCM_REGION} AT > FLASH\n"
               f"  _siitcm = LOADADDR(.itcm);\n")
    return memory, section


def linker_script(board: Board, stack_bytes: int, code_tcm_kernels: tuple[str, ...] = ()) -> str:
    """GNU ld script: code in flash, .data/.bss at the bottom of SRAM, stack at the top, and
    everything in between is the model RAM region (``__model_ram_start`` .. ``__model_ram_end``).
    The flash programming routines (section ``.ramfunc``) are copied to SRAM with ``.data`` at start-up;
    the plan slots start at ``__flash_slots_start``, the first slot boundary above the image. On a board with
    an instruction TCM (F7) the code of the objects ``code_tcm_kernels`` runs from it."""
    tcm_memory, tcm_section = _code_tcm_parts(board, tuple(code_tcm_kernels))
    return f"""/* Generated by measure_agent/firmware_build/linker.py for {board.name} ({board.mcu}). */
ENTRY(Reset_Handler)

MEMORY
{{
  FLASH (rx)  : ORIGIN = 0x{board.flash.base:08X}, LENGTH = {board.flash.size}
  RAM   (rwx) : ORIGIN = 0x{board.sram.base:08X}, LENGTH = {board.sram.size}
{tcm_memory}}}

__stack_size = {stack_bytes};
__stack_top = ORIGIN(RAM) + LENGTH(RAM);
__stack_limit = __stack_top - __stack_size;

SECTIONS
{{
  .isr_vector : {{ . = ALIGN(4); KEEP(*(.isr_vector)) . = ALIGN(4); }} > FLASH
{tcm_section}  .text : {{
    *(.text .text.*)
    *(.rodata .rodata.*)
    KEEP(*(.init)) KEEP(*(.fini))
    . = ALIGN(4);
  }} > FLASH
  .ARM.extab : {{ *(.ARM.extab* .gnu.linkonce.armextab.*) }} > FLASH
  .ARM.exidx : {{ __exidx_start = .; *(.ARM.exidx* .gnu.linkonce.armexidx.*) __exidx_end = .; }} > FLASH
  .preinit_array : {{ PROVIDE_HIDDEN(__preinit_array_start = .); KEEP(*(.preinit_array*)) PROVIDE_HIDDEN(__preinit_array_end = .); }} > FLASH
  .init_array : {{ PROVIDE_HIDDEN(__init_array_start = .); KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array*)) PROVIDE_HIDDEN(__init_array_end = .); }} > FLASH
  .fini_array : {{ PROVIDE_HIDDEN(__fini_array_start = .); KEEP(*(.fini_array*)) PROVIDE_HIDDEN(__fini_array_end = .); }} > FLASH

  _sidata = LOADADDR(.data);
  .data : {{ . = ALIGN(4); _sdata = .; *(.ramfunc .ramfunc.*) *(.data .data.*) . = ALIGN(4); _edata = .; }} > RAM AT > FLASH
  __flash_image_end = LOADADDR(.data) + SIZEOF(.data);
  __flash_slots_start = {_slots_start_expr(board)};
  __flash_slots_end = ORIGIN(FLASH) + LENGTH(FLASH);
  .bss (NOLOAD) : {{ . = ALIGN(4); _sbss = .; *(.bss .bss.*) *(COMMON) . = ALIGN(4); _ebss = .; }} > RAM

  . = ALIGN(16);
  __model_ram_start = .;
  __model_ram_end = __stack_limit & ~15;
  end = .; _end = .;

  ASSERT(__model_ram_end >= __model_ram_start + 1024, "no room left for the model RAM region")
  /DISCARD/ : {{ *(.ARM.attributes.discard) }}
}}
"""
