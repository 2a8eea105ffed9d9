//! Components that are large on purpose, for the host's compile-size ceilings.

use wasm_encoder::{
    BlockType, CodeSection, Component, Function, FunctionSection, Instruction, Module,
    ModuleSection, TypeSection, ValType,
};

/// Locals each generated function juggles: more than a machine has
/// registers, so the register allocator works hard, as it would on an
/// attacker's function built to exhaust the compiler.
const LOCALS: u32 = 64;

/// A component holding one core module with `functions` functions, each
/// with a body of about `body_bytes` bytes: arithmetic over [`LOCALS`]
/// locals in many small blocks, all of it feeding the function's result. It exports nothing, so it is not a plugin: it exists
/// to be compiled (or refused before compilation).
pub fn big_component(functions: u32, body_bytes: usize) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I64]);
    let mut declared = FunctionSection::new();
    let mut code = CodeSection::new();
    for f in 0..functions {
        declared.function(0);
        let mut body = Function::new([(LOCALS, ValType::I64)]);
        let mut step = f;
        // The sum of every local is the result, so no computation is dead.
        let tail = 3 * LOCALS as usize + 4;
        // Each step is about sixteen bytes; stop one step short of the size.
        while body.byte_len() + tail + 20 < body_bytes {
            let local = |k: u32| (step.wrapping_mul(7).wrapping_add(k * 13)) % LOCALS;
            // A conditional branch per step: many small blocks, each
            // value live across them, for the register allocator.
            body.instruction(&Instruction::Block(BlockType::Empty))
                .instruction(&Instruction::LocalGet(local(0)))
                .instruction(&Instruction::LocalGet(local(1)))
                .instruction(&Instruction::I64Mul)
                .instruction(&Instruction::LocalGet(local(2)))
                .instruction(&Instruction::I64Add)
                .instruction(&Instruction::LocalTee(local(3)))
                .instruction(&Instruction::I64Eqz)
                .instruction(&Instruction::BrIf(0))
                .instruction(&Instruction::LocalGet(local(4)))
                .instruction(&Instruction::I64Const(1))
                .instruction(&Instruction::I64Add)
                .instruction(&Instruction::LocalSet(local(4)))
                .instruction(&Instruction::End);
            step = step.wrapping_add(1);
        }
        body.instruction(&Instruction::I64Const(0));
        for local in 0..LOCALS {
            body.instruction(&Instruction::LocalGet(local))
                .instruction(&Instruction::I64Add);
        }
        body.instruction(&Instruction::End);
        code.function(&body);
    }
    let mut module = Module::new();
    module.section(&types).section(&declared).section(&code);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    component.finish()
}
