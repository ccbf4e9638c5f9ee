//! A bare-metal firmware that uses callrec's allocation-free core with no
//! global allocator: it writes and parses a recording header and frames,
//! builds and parses RTP, and writes a `Record: on` INFO into a buffer.
//!
//! On Cortex-M it runs under QEMU (`cargo run --release --target
//! thumbv7em-none-eabihf` or `thumbv6m-none-eabi`), prints through
//! semihosting and exits 0 when every check passes; on RISC-V it is linked
//! only. See README.md.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

mod checks;

#[cfg(target_arch = "arm")]
mod board {
    use core::fmt::Write;

    use cortex_m_rt::entry;
    use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
    use cortex_m_semihosting::hio;

    /// Semihosting stdout, or nowhere when the host has none.
    struct Console(Option<hio::HostStream>);

    impl Write for Console {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            if let Some(out) = &mut self.0 {
                out.write_str(s)?;
            }
            Ok(())
        }
    }

    #[entry]
    fn main() -> ! {
        let mut console = Console(hio::hstdout().ok());
        match crate::checks::run(&mut console) {
            Ok(()) => {
                let _ = writeln!(console, "callrec firmware: all checks passed");
                debug::exit(EXIT_SUCCESS);
            }
            Err(failure) => {
                let _ = writeln!(console, "callrec firmware: FAILED: {failure}");
                debug::exit(EXIT_FAILURE);
            }
        }
        loop {}
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let mut console = Console(hio::hstdout().ok());
        let _ = writeln!(console, "callrec firmware: panic: {info}");
        debug::exit(EXIT_FAILURE);
        loop {}
    }
}

#[cfg(target_arch = "riscv32")]
mod board {
    /// Output goes nowhere: this target is linked, not run.
    struct Sink;

    impl core::fmt::Write for Sink {
        fn write_str(&mut self, _: &str) -> core::fmt::Result {
            Ok(())
        }
    }

    #[riscv_rt::entry]
    fn main() -> ! {
        let passed = crate::checks::run(&mut Sink).is_ok();
        loop {
            core::hint::black_box(passed);
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        loop {}
    }
}
