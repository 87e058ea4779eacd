//! Build-time facts baked into the binaries (only `seqbench-torch`, tests, examples and benches
//! link libtorch; the `seqbench` front binary gets none of the link arguments):
//! - the libtorch library directory goes on the rpath, so `seqbench-torch` runs with no
//!   LD_LIBRARY_PATH (torch-sys exports it to direct dependents as DEP_TCH_LIBTORCH_LIB);
//! - libtorch_cuda is linked with --no-as-needed: nothing references its symbols directly, so
//!   the linker would otherwise drop it and CUDA would never register at run time;
//! - with a CUDA-enabled libtorch, csrc/cuda_memory.cpp (the CUDA allocator's peak memory, which
//!   tch does not expose) is compiled against the wheel's headers and `seqbench_cuda_memory` is
//!   set; without one, the CUDA memory figure is reported as not measured;
//! - csrc/amp.cpp (autocast per device type and the float32 matmul precision, which tch does not
//!   expose) against the wheel's headers, setting `seqbench_amp`; without it, mixed precision
//!   is refused with a message;
//! - csrc/scan.cpp and csrc/causal_conv.cpp (fused scans and Mamba's causal conv with their own
//!   autograd; compiled as one unit, csrc/kernels.cpp), setting `seqbench_scan`; without them
//!   the mixers run their libtorch references;
//! - torch version, git commit and rustc version for env.json;
//! - the model presets of configs/models, so that `preset: NAME` works wherever the binary runs.
use std::path::Path;
use std::process::Command;

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn torch_version(lib_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(lib_dir.parent()?.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split('\'').nth(1)?.to_string())
}

/// A directory with the CUDA runtime headers: `$CUDA_HOME/include`, else one shipped by the
/// wheels beside torch (the nvidia-* wheels, or triton's copy, which has `crt/` complete).
fn cuda_include(lib_dir: &Path) -> Option<std::path::PathBuf> {
    let complete = |d: &Path| d.join("cuda_runtime_api.h").is_file() && d.join("crt/host_config.h").is_file();
    let site_packages = lib_dir.parent()?.parent()?.to_path_buf();
    let mut candidates: Vec<std::path::PathBuf> =
        std::env::var_os("CUDA_HOME").map(|h| std::path::PathBuf::from(h).join("include")).into_iter().collect();
    if let Ok(entries) = std::fs::read_dir(site_packages.join("nvidia")) {
        candidates.extend(entries.flatten().map(|e| e.path().join("include")));
    }
    candidates.push(site_packages.join("triton/backends/nvidia/include"));
    candidates.into_iter().find(|d| complete(d))
}

/// A build of `csrc/<name>.cpp` against libtorch's headers, with the wheel's C++ ABI.
fn shim(name: &str, includes: &[std::path::PathBuf]) -> cc::Build {
    let mut build = cc::Build::new();
    build.cpp(true).file(format!("csrc/{name}.cpp")).flag("-std=c++17").define("_GLIBCXX_USE_CXX11_ABI", "1");
    for dir in includes {
        build.include(dir);
    }
    build.warnings(false);
    build
}

/// Compiles `csrc/<name>.cpp` into `libseqbench_<name>.a`.
fn compile_shim(name: &str, includes: &[std::path::PathBuf]) -> Result<(), cc::Error> {
    shim(name, includes).try_compile(&format!("seqbench_{name}"))
}

/// After a shim compiled: link the libtorch libraries it calls and set its `cfg`; else warn
/// with what is lost.
fn link_shim(built: Result<(), cc::Error>, lib_path: &Path, libs: &[&str], cfg: &str, lost: &str) {
    match built {
        Ok(()) => {
            println!("cargo:rustc-link-search=native={}", lib_path.display());
            for lib in libs {
                println!("cargo:rustc-link-lib=dylib={lib}");
            }
            println!("cargo:rustc-cfg={cfg}");
        }
        Err(e) => println!("cargo:warning={cfg} shim not built ({e}): {lost}"),
    }
}

/// Compiles the CUDA memory shim when libtorch has CUDA and its headers are at hand.
fn build_cuda_memory_shim(lib_path: &Path) {
    println!("cargo:rerun-if-changed=csrc/cuda_memory.cpp");
    let Some(torch_include) = lib_path.parent().map(|p| p.join("include")) else { return };
    if !lib_path.join("libc10_cuda.so").exists() || !torch_include.join("c10/cuda/CUDACachingAllocator.h").exists() {
        return;
    }
    let Some(cuda) = cuda_include(lib_path) else {
        println!("cargo:warning=libtorch has CUDA but no cuda_runtime_api.h was found (set CUDA_HOME): CUDA peak memory will not be measured");
        return;
    };
    let built = compile_shim("cuda_memory", &[torch_include, cuda]);
    let lost = "CUDA peak memory will not be measured";
    link_shim(built, lib_path, &["c10_cuda", "c10"], "seqbench_cuda_memory", lost);
}

/// Compiles the mixed-precision shim when libtorch's headers are at hand.
fn build_amp_shim(lib_path: &Path) {
    println!("cargo:rerun-if-changed=csrc/amp.cpp");
    let Some(torch_include) = lib_path.parent().map(|p| p.join("include")) else { return };
    if !torch_include.join("ATen/autocast_mode.h").exists() {
        println!("cargo:warning=libtorch headers not found: mixed precision (dtype bfloat16/float16) unavailable");
        return;
    }
    let api = torch_include.join("torch/csrc/api/include");
    let built = compile_shim("amp", &[torch_include, api]);
    let lost = "dtype bfloat16/float16 unavailable";
    link_shim(built, lib_path, &["torch_cpu", "c10"], "seqbench_amp", lost);
}

/// Compiles the fused ops (csrc/scan.cpp, csrc/causal_conv.cpp) when libtorch's headers are at hand. They are
/// optimised whatever the profile (a debug build's scans would make the tests slow) and
/// vectorised through `#pragma omp simd`; without them every mixer uses its `reference` scan.
fn build_scan_shim(lib_path: &Path) {
    for file in ["csrc/kernels.cpp", "csrc/scan.cpp", "csrc/causal_conv.cpp", "csrc/kernel_util.h"] {
        println!("cargo:rerun-if-changed={file}");
    }
    let Some(torch_include) = lib_path.parent().map(|p| p.join("include")) else { return };
    let api = torch_include.join("torch/csrc/api/include");
    if !api.join("torch/autograd.h").exists() {
        println!("cargo:warning=libtorch headers not found: fused scans unavailable (the reference scans run)");
        return;
    }
    let mut build = shim("kernels", &[torch_include, api]);
    build.opt_level(3).debug(false).flag_if_supported("-fopenmp-simd");
    let lost = "the reference scans run";
    link_shim(build.try_compile("seqbench_scan"), lib_path, &["torch_cpu", "c10"], "seqbench_scan", lost);
}

/// `$OUT_DIR/presets.rs`: `[(name, text), …]` of every configs/models/*.yaml, sorted by name.
/// The texts are written in as literals, not `include_str!` of absolute paths: clones that share
/// the target dir share this script's output too (cargo does not tell workspace members apart by
/// their path), and a path would name whichever clone ran the script last, deleted or not.
fn bundle_presets() {
    println!("cargo:rerun-if-changed=configs/models");
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("configs/models");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from("&[\n");
    for path in files {
        let name = path.file_stem().and_then(|s| s.to_str()).expect("preset file names are UTF-8");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        code += &format!("    ({name:?}, {text:?}),\n");
    }
    code += "]\n";
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets it")).join("presets.rs");
    std::fs::write(out, code).expect("write presets.rs");
}

/// With the `python` feature: libpython's directory goes on the rpath (pyo3 links it but leaves
/// finding it at run time to the loader), and the venv whose site-packages the embedded
/// interpreter uses is baked in as SEQBENCH_PYTHON_PREFIX (the interpreter itself would take the
/// base installation's, without torch).
fn embed_python() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    if std::env::var_os("CARGO_FEATURE_PYTHON").is_none() {
        return;
    }
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = "import sys, sysconfig; print(sysconfig.get_config_var('LIBDIR')); print(sys.prefix)";
    let answer = command_output(&python, &["-c", script]).unwrap_or_default();
    let mut lines = answer.lines();
    if let (Some(lib_dir), Some(prefix)) = (lines.next(), lines.next()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
        println!("cargo:rustc-env=SEQBENCH_PYTHON_PREFIX={prefix}");
    } else {
        println!("cargo:warning=`{python}` did not say where libpython is: `arch: python` may not load");
        println!("cargo:rustc-env=SEQBENCH_PYTHON_PREFIX=");
    }
}

/// A link argument for the targets that run libtorch: the `seqbench-torch` binary, integration
/// tests, examples and benchmarks (Cargo has no such instruction for the library's unit tests,
/// which therefore do not register CUDA). The `seqbench` binary (src/main.rs) links no libtorch
/// and must not get them: forcing libtorch_cuda in would cost it half a second at every start.
fn torch_link_arg(arg: &str) {
    println!("cargo:rustc-link-arg-bin=seqbench-torch={arg}");
    for kind in ["tests", "examples", "benches"] {
        println!("cargo:rustc-link-arg-{kind}={arg}");
    }
}

fn main() {
    bundle_presets();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rustc-check-cfg=cfg(seqbench_cuda_memory)");
    println!("cargo:rustc-check-cfg=cfg(seqbench_amp)");
    println!("cargo:rustc-check-cfg=cfg(seqbench_scan)");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");

    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    let mut version = "unknown".to_string();
    if !lib_dir.is_empty() {
        let lib_path = Path::new(&lib_dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
        if lib_path.join("libtorch_cuda.so").exists() {
            for arg in ["-Wl,--no-as-needed", "-ltorch_cuda", "-Wl,--as-needed"] {
                torch_link_arg(arg);
            }
        }
        version = torch_version(lib_path).unwrap_or(version);
        build_cuda_memory_shim(lib_path);
        build_amp_shim(lib_path);
        build_scan_shim(lib_path);
    }
    embed_python();
    println!("cargo:rustc-env=SEQBENCH_LIBTORCH_DIR={lib_dir}");
    println!("cargo:rustc-env=SEQBENCH_TORCH_VERSION={version}");

    let mut commit =
        command_output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    // --no-optional-locks: a plain `git status` rewrites .git/index (refreshed stat data) while
    // this script runs, which cargo then takes for a change and reruns the script, rebuilding
    // the crate at every build.
    let status = ["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"];
    if command_output("git", &status).is_some_and(|s| !s.is_empty()) {
        commit.push_str("-dirty");
    }
    println!("cargo:rustc-env=SEQBENCH_GIT_COMMIT={commit}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = command_output(&rustc, &["--version"]).unwrap_or_default();
    println!("cargo:rustc-env=SEQBENCH_RUSTC_VERSION={rustc_version}");
}
