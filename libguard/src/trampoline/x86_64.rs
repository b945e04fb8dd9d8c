//! x86_64 half of the inline patcher: a length decoder for the prologue forms that are
//! position-independent, and the 14-byte absolute jump.
//!
//! Only instructions this module can prove position-independent are relocated (`endbr64`,
//! `push`/`pop`, register-to-register `mov`/`test`/`xor`/ALU, `sub`/`add` of an immediate to a
//! register). Anything else (RIP-relative operands, branches, unknown opcodes) is refused, and
//! the caller records an audit note instead of running a half-understood copy.
//! x86_64 keeps instruction and data caches coherent, so no cache maintenance is needed.

use super::Refused;

/// Whether [`super::patch`] patches on this architecture.
pub const SUPPORTED: bool = true;

/// `jmp qword ptr [rip+0]` followed by the 8-byte target.
pub const JMP_LEN: usize = 14;

/// Length of one instruction at the start of `code` if it is one of the relocatable forms
/// (position-independent: it can run at any address unchanged); `None` otherwise.
pub fn insn_len(code: &[u8]) -> Option<usize> {
    let b0 = *code.first()?;
    // endbr64
    if code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        return Some(4);
    }
    // push/pop r64 (50-5f); with REX.B (41).
    if (0x50..=0x5f).contains(&b0) {
        return Some(1);
    }
    let (rex, rest) = if (0x40..=0x4f).contains(&b0) {
        (true, code.get(1..)?)
    } else {
        (false, code)
    };
    let op = *rest.first()?;
    let pre = usize::from(rex);
    if rex && (0x50..=0x5f).contains(&op) {
        return Some(2);
    }
    let modrm = *rest.get(1)?;
    let reg_reg = modrm >> 6 == 3;
    match op {
        // mov r/m,r | mov r,r/m | test | xor | sub | add | and | or | cmp, register forms only
        0x89 | 0x8b | 0x85 | 0x31 | 0x33 | 0x29 | 0x2b | 0x01 | 0x03 | 0x21 | 0x23 | 0x09
        | 0x0b | 0x39 | 0x3b
            if reg_reg =>
        {
            Some(pre + 2)
        }
        // group 1 with imm8 / imm32 on a register (sub rsp, 0x48 etc.)
        0x83 if reg_reg => Some(pre + 3),
        0x81 if reg_reg => Some(pre + 6),
        _ => None,
    }
}

/// How many bytes of whole instructions cover at least `min` bytes of `code`; refused at the
/// first instruction that cannot be relocated.
pub fn prologue_len(code: &[u8], min: usize) -> Result<usize, Refused> {
    let mut off = 0;
    while off < min {
        let rest = code.get(off..).unwrap_or(&[]);
        match insn_len(rest) {
            Some(n) => off += n,
            None => {
                return Err(Refused::Unrelocatable {
                    offset: off,
                    opcode: rest.first().copied().unwrap_or(0) as u32,
                });
            }
        }
    }
    Ok(off)
}

/// The relocated copy of the first `n` bytes of `code`: unchanged (only position-independent
/// instructions were accepted).
pub fn relocate(code: &[u8], n: usize, out: &mut [u8]) -> Option<usize> {
    out.get_mut(..n)?.copy_from_slice(code.get(..n)?);
    Some(n)
}

/// An absolute jump to `to`, usable anywhere.
pub fn jump(to: usize) -> [u8; JMP_LEN] {
    let mut j = [0u8; JMP_LEN];
    j[0] = 0xff;
    j[1] = 0x25;
    j[6..14].copy_from_slice(&(to as u64).to_le_bytes());
    j
}

/// Filler for the bytes of the entry after the jump: `int3` (never reached).
pub const FILL: u8 = 0xcc;

/// Instruction cache maintenance after writing code: none needed on x86_64.
pub fn sync_icache(_start: *const u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_node_prologues() {
        // node 20's SSL_write and SSL_write_ex entries (objdump).
        let w = [
            0x55, 0x48, 0x89, 0xe5, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x48, 0x83, 0xec, 0x48,
            0x85, 0xd2, 0x0f, 0x88,
        ];
        assert_eq!(prologue_len(&w, JMP_LEN), Ok(14));
        let wx = [
            0x55, 0x48, 0x89, 0xe5, 0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x53, 0x48,
            0x83, 0xec, 0x38, 0x48, 0x83, 0x7f, 0x30, 0x00,
        ];
        assert_eq!(prologue_len(&wx, JMP_LEN), Ok(17));
        let cet = [
            0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x48, 0x81, 0xec, 1, 2, 0, 0,
        ];
        assert_eq!(prologue_len(&cet, JMP_LEN), Ok(15));
    }

    #[test]
    fn refuses_rip_relative_and_branches() {
        // lea rax,[rip+x] at offset 1
        let lea = [
            0x55, 0x48, 0x8d, 0x05, 0, 0, 0, 0, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
        ];
        assert_eq!(
            prologue_len(&lea, JMP_LEN),
            Err(Refused::Unrelocatable {
                offset: 1,
                opcode: 0x48
            })
        );
        // mov rax, [rip+x] (memory operand, mod=00 rm=101)
        let mov = [0x48, 0x8b, 0x05, 0, 0, 0, 0];
        assert!(prologue_len(&mov, JMP_LEN).is_err());
        // jmp rel32 and call rel32
        assert!(prologue_len(&[0xe9, 0, 0, 0, 0], JMP_LEN).is_err());
        assert!(prologue_len(&[0x55, 0xe8, 0, 0, 0, 0], JMP_LEN).is_err());
        assert!(prologue_len(&[], JMP_LEN).is_err());
    }

    #[test]
    fn jump_encodes_the_absolute_target() {
        let j = jump(0x1122_3344_5566_7788);
        assert_eq!(&j[..6], &[0xff, 0x25, 0, 0, 0, 0]);
        assert_eq!(
            u64::from_le_bytes(j[6..].try_into().unwrap()),
            0x1122_3344_5566_7788
        );
    }
}
