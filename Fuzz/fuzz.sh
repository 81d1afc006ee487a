#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that take outside input (libFuzzer).
#
#   Fuzz/fuzz.sh build             build every target into $FUZZ_SCRATCH/fuzz/bin
#   Fuzz/fuzz.sh run [TARGET...]   run each for $FUZZ_SECONDS from the committed
#                                  corpus (read only); fails on any crash, hang or
#                                  runaway allocation, leaving the input in
#                                  $FUZZ_ARTIFACTS/TARGET/
#   Fuzz/fuzz.sh merge [TARGET...] run longer, then merge what was new into
#                                  Fuzz/Corpus/TARGET (minimised with -merge=1)
#   Fuzz/fuzz.sh replay FILE...    run a target on saved inputs (crash files in
#                                  $FUZZ_ARTIFACTS/TARGET/ or corpus files);
#                                  the target is the name of the file's folder
#   Fuzz/fuzz.sh list              the targets
#
# Replaying by hand: SWIFT_BACKTRACE=enable=no .build-fuzz/fuzz/bin/TARGET FILE
#
# Why built this way: SwiftPM compiles the library modules with coverage
# instrumentation (-sanitize=fuzzer,address only instruments when nothing is
# linked) and -enable-testing, into a scratch path of their own; each target is
# then one swiftc link of Fuzz/Targets/TARGET.swift (-parse-as-library, its
# entry point is @_cdecl("LLVMFuzzerTestOneInput")) with those objects, so that
# libFuzzer's main is the only main. Sources/ and Package.swift stay as they are.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
package=${FUZZ_PACKAGE:-$root}
scratch=${FUZZ_SCRATCH:-$root/.build-fuzz}
artifacts=${FUZZ_ARTIFACTS:-$root/test-artifacts/fuzz}
seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-$(nproc)}
configuration=${FUZZ_CONFIGURATION:-release}
# Per input: a hang is anything slower than this many seconds; memory in MB.
timeout=${FUZZ_TIMEOUT:-10}
rss_limit=${FUZZ_RSS_LIMIT_MB:-2048}
malloc_limit=${FUZZ_MALLOC_LIMIT_MB:-256}
max_len=${FUZZ_MAX_LEN:-8192}
bin=$scratch/fuzz/bin

if [[ -z "$(command -v swift || true)" && -x /opt/swift/usr/bin/swift ]]; then export PATH=/opt/swift/usr/bin:$PATH; fi
# libFuzzer reports a crash itself (with the input); Swift's own backtracer
# would run inside the crashed, sanitized process and trip ASan.
export SWIFT_BACKTRACE=enable=no

all_targets() {
  local file
  for file in "$here"/Targets/*.swift; do basename "$file" .swift; done
}

build() {
  local swift_flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing)
  # The modules the targets test, and with them what they depend on.
  local module
  for module in PBPAPI Identity; do
    swift build --package-path "$package" --scratch-path "$scratch" -c "$configuration" "${swift_flags[@]}" \
      --target "$module"
  done
  local products="$scratch/$configuration"
  # The objects of every library module built above (WALStream among them,
  # through PostgresClient); not tests, executables or plugin tools. C
  # modules (BoringSSL, under swift-crypto) keep theirs in folders of their
  # sources, hence the walk.
  local objects=()
  local dir name file
  for dir in "$products"/*.build; do
    name=$(basename "$dir" .build)
    case $name in
      *Tests | *-tool | pbp_* | pbpPackage* | generate_*) continue ;;
    esac
    while IFS= read -r -d '' file; do objects+=("$file"); done < <(find "$dir" -name '*.o' -print0)
  done
  # The C modules' maps and headers, for the modules that import them.
  local module_maps=() flag
  for flag in $(pkg-config --cflags-only-I libpq); do module_maps+=(-Xcc "$flag"); done
  for file in "$products"/*.build/module.modulemap "$package"/Sources/*/module.modulemap; do
    [[ -e $file ]] && module_maps+=(-Xcc "-fmodule-map-file=$file")
  done
  mkdir -p "$bin"
  local optimize=-O
  [[ $configuration == debug ]] && optimize=-Onone
  local target pids=() status=0
  for target in $(all_targets); do
    local output=$bin/$target
    local source=$here/Targets/$target.swift
    if [[ -x $output ]] && [[ -z $(find "$source" "$here/Support" "${objects[@]}" "$here/fuzz.sh" -newer "$output" -print -quit) ]]; then
      continue
    fi
    # A target whose head says `// fuzz-links: MODULE...` links only those
    # modules (pure ones: no libpq) and only the support that needs no other
    # (APIChecks uses PBPAPI); the others link every module above.
    local links linked=("${objects[@]}") libraries=(-lpq) support=("$here"/Support/*.swift)
    links=$(sed -n 's|^// fuzz-links: *||p' "$source")
    if [[ -n $links ]]; then
      linked=()
      libraries=()
      support=("$here/Support/FuzzSupport.swift")
      for name in $links; do
        for file in "$products/$name.build"/*.o; do [[ -e $file ]] && linked+=("$file"); done
      done
    fi
    echo "linking fuzz target $target"
    swiftc -swift-version 6 "$optimize" -g -sanitize=fuzzer,address -parse-as-library -use-ld=lld \
      -module-name "fuzz_${target//-/_}" -I "$products/Modules" "${module_maps[@]}" \
      "${support[@]}" "$source" "${linked[@]}" "${libraries[@]}" -o "$output" &
    pids+=($!)
    if ((${#pids[@]} >= jobs)); then
      wait "${pids[0]}" || status=1
      pids=("${pids[@]:1}")
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return $status
}

# Flags every run shares; a dictionary when the target has one.
fuzz_flags() {
  local target=$1
  flags=(-timeout="$timeout" -rss_limit_mb="$rss_limit" -malloc_limit_mb="$malloc_limit" -max_len="$max_len"
    -print_final_stats=1 -print_pcs=0)
  [[ -f $here/Dictionaries/$target.dict ]] && flags+=(-dict="$here/Dictionaries/$target.dict")
  return 0
}

# Runs one target for $seconds: new inputs go to a temporary folder, so the
# committed corpus only seeds. Prints one summary line; the log is kept.
run_one() {
  local target=$1 mode=$2
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/pbp-fuzz-$target.XXXXXX")
  mkdir -p "$artifacts/$target" "$here/Corpus/$target"
  local log=$artifacts/$target.log
  fuzz_flags "$target"
  local status=0
  "$bin/$target" "${flags[@]}" -max_total_time="$seconds" -artifact_prefix="$artifacts/$target/" \
    "$work" "$here/Corpus/$target" >"$log" 2>&1 || status=$?
  local stats
  stats=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -1 || true)
  local execs_per_second
  execs_per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  if ((status != 0)); then
    echo "FAIL $target (exit $status): $(grep -m1 -E 'ERROR|Fatal error|property violated|Test unit written' "$log" || true)"
    local file
    for file in $(sed -n 's/.*Test unit written to //p' "$log"); do
      echo "  input: $file"
      echo "  replay: Fuzz/fuzz.sh replay ${file#"$root"/}"
    done
    echo "  log: $log"
    rm -rf "$work"
    return 1
  fi
  printf 'ok   %-14s %6s exec/s  %s\n' "$target" "${execs_per_second:-?}" "${stats#* }"
  if [[ $mode == merge ]]; then
    merge_corpus "$target" "$work" >>"$log" 2>&1
    echo "     $target corpus: $(ls "$here/Corpus/$target" | wc -l) files, $(cat "$here/Corpus/$target"/* | wc -c) bytes"
  fi
  rm -rf "$work"
}

# Minimises the committed corpus together with a run's new inputs: the
# smallest set that reaches the same code (edges, not hit counts, to keep it
# small; a run regains the counts in seconds) replaces it. The hand-made
# seeds (seed-*) stay whatever they cover.
merge_corpus() {
  local target=$1 work=$2 corpus=$here/Corpus/$target
  local fresh seed
  fresh=$(mktemp -d "${TMPDIR:-/tmp}/pbp-fuzz-merge-$target.XXXXXX")
  "$bin/$target" "${flags[@]}" -merge=1 -use_counters=0 "$fresh" "$corpus" "$work"
  for seed in "$corpus"/seed-*; do
    [[ -e $seed ]] && rm -f "$fresh/$(sha1sum <"$seed" | cut -c1-40)"
  done
  find "$corpus" -maxdepth 1 -type f ! -name 'seed-*' -delete
  cp "$fresh"/* "$corpus"/ 2>/dev/null || true
  rm -rf "$fresh"
}

run() {
  local mode=$1
  shift
  local targets=("$@")
  ((${#targets[@]})) || mapfile -t targets < <(all_targets)
  mkdir -p "$artifacts"
  echo "fuzzing ${#targets[@]} targets for ${seconds}s each, $jobs at a time (logs in $artifacts)"
  local status=0
  export -f run_one fuzz_flags merge_corpus
  export here root bin artifacts seconds timeout rss_limit malloc_limit max_len
  printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$1" "$2"' _ {} "$mode" || status=1
  if ((status != 0)); then
    echo "fuzzing found a problem: the inputs are in $artifacts/TARGET/"
  fi
  return $status
}

command=${1:-run}
shift || true
case $command in
  build) build ;;
  run) build && run run "$@" ;;
  merge) build && run merge "$@" ;;
  replay)
    ((${#@})) || { echo "usage: $0 replay FILE..." >&2; exit 2; }
    build
    for file in "$@"; do
      target=$(basename "$(dirname "$(realpath "$file")")")
      [[ -x $bin/$target ]] || { echo "$file: its folder names no fuzz target ($(all_targets | xargs))" >&2; exit 2; }
      fuzz_flags "$target"
      "$bin/$target" "${flags[@]}" "$file"
    done
    ;;
  list) all_targets ;;
  *)
    echo "usage: $0 build | run [TARGET...] | merge [TARGET...] | replay FILE... | list" >&2
    exit 2
    ;;
esac
