//! Build-time facts baked into the binary:
//! - the libtorch library directory goes on the rpath, so `seqbench` runs with no
//!   LD_LIBRARY_PATH (torch-sys exports it to direct dependents as DEP_TCH_LIBTORCH_LIB);
//! - libtorch_cuda is linked with --no-as-needed: nothing references its symbols directly, so
//!   the linker would otherwise drop it and CUDA would never register at run time;
//! - torch version, git commit and rustc version for env.json.
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

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");

    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    let mut version = "unknown".to_string();
    if !lib_dir.is_empty() {
        let lib_path = Path::new(&lib_dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
        if lib_path.join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
        version = torch_version(lib_path).unwrap_or(version);
    }
    println!("cargo:rustc-env=SEQBENCH_LIBTORCH_DIR={lib_dir}");
    println!("cargo:rustc-env=SEQBENCH_TORCH_VERSION={version}");

    let mut commit =
        command_output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    if command_output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
        commit.push_str("-dirty");
    }
    println!("cargo:rustc-env=SEQBENCH_GIT_COMMIT={commit}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = command_output(&rustc, &["--version"]).unwrap_or_default();
    println!("cargo:rustc-env=SEQBENCH_RUSTC_VERSION={rustc_version}");
}
