"""Regenerates RESULTS.md from seed-study folders (launch.py --seeds; neural_gpu/seeds.py).

  python -m neural_gpu.results                      # the folders listed in results/studies.txt
  python -m neural_gpu.results runs/badd_seeds runs/bmul_seeds --out=/tmp/mine.md

Each study gets a section: the command that made it (from its seeds.json), the per-seed table
and the summary, read again from the seed folders, so a study extended or resumed since its
seeds.md was written shows its current state. RESULTS.md is generated: edit the list of studies
(results/studies.txt: one folder per line, relative to the repository root, '#' starts a
comment), not the file. Failing and unfinished seeds are listed like the others.

Run folders are not in git and a fresh machine has none, so for the listed studies the record
read from a folder is also saved to results/records/<folder name>.json (small; commit it), and a
study whose folder is absent is rendered from that saved record; a study with neither keeps its
section of the RESULTS.md being replaced, marked as such. Folders given as arguments are read as
they are, with no saving and no fallback, and need --out: the repository's RESULTS.md is made
from the list only.
"""

import argparse
import os
import re
import shlex
import sys

from neural_gpu import seeds as seeds_lib
from neural_gpu import sweep
from neural_gpu import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDIES_FILE = os.path.join("results", "studies.txt")
RECORDS_DIR = os.path.join("results", "records")
COMMAND = "python -m neural_gpu.results"


def read_study_list(path: str) -> list[str]:
  """The folders listed in `path`, one a line; blank lines and '#' comments are skipped."""
  with open(path) as f:
    lines = [line.split("#", 1)[0].strip() for line in f]
  return [line for line in lines if line]


def load_study(folder: str) -> dict:
  """A study's record, its rows read again from its seed folders.

  Raises ValueError when the folder holds no seeds.json (not a seed study, or never started).
  """
  saved = sweep.read_json(os.path.join(folder, seeds_lib.STUDY_NAME))
  if saved is None:
    raise ValueError(f"{folder} holds no readable {seeds_lib.STUDY_NAME}; run "
                     f"`python launch.py --config=... --seeds=... --workdir={folder}` first "
                     "(run folders are not in git), or name your own study folders")
  missing = [k for k in ("command", "config", "seeds", "num_steps") if k not in saved]
  if missing:
    raise ValueError(f"{os.path.join(folder, seeds_lib.STUDY_NAME)} lacks {', '.join(missing)}; "
                     "re-run its launch.py --seeds command to rewrite it")
  return seeds_lib.study_record(folder, saved["command"], saved["config"],
                                saved.get("command_line_overrides", {}), saved["seeds"],
                                saved["num_steps"], saved.get("lengths", []))


def record_path(folder: str) -> str:
  """Where the saved record of a listed study lives: results/records/<folder's name>.json."""
  return os.path.join(ROOT, RECORDS_DIR, os.path.basename(os.path.normpath(folder)) + ".json")


def previous_sections(text: str) -> dict[str, str]:
  """The study sections of an earlier RESULTS.md, keyed by the folder their heading names
  ('## <config> (<folder>)'), each up to the next heading, without trailing blank lines."""
  sections = {}
  for part in re.split(r"^(?=## )", text, flags=re.M)[1:]:
    heading = part.split("\n", 1)[0]
    match = re.fullmatch(r"## .* \((.+)\)", heading)
    if match:
      sections[match.group(1)] = part.rstrip("\n")
  return sections


def load_listed(folders: list[str], previous: dict[str, str]) -> list[tuple[str, object]]:
  """The listed studies (folder relative to the repository root): each its record read from
  its folder (and saved, see the module docstring), else its saved record (marked), else its
  section of the previous RESULTS.md (a str, marked). Raises ValueError when a study has none
  of the three, or when two listed folders share a name (and so a record); nothing is saved
  until every study has been read."""
  by_record = {}
  for folder in folders:
    other = by_record.setdefault(record_path(folder), folder)
    if other != folder or folders.count(folder) > 1:
      raise ValueError(f"{STUDIES_FILE} lists {other} and {folder}, which would share "
                       f"{os.path.relpath(record_path(folder), ROOT)}; list each study once, "
                       "under a folder name no other listed study has")
  studies, fresh = [], []
  for folder in folders:
    path = os.path.join(ROOT, folder)
    saved = record_path(folder)
    if os.path.exists(os.path.join(path, seeds_lib.STUDY_NAME)):
      record = load_study(path)
      fresh.append((saved, record))
    elif os.path.exists(saved):
      record = sweep.read_json(saved)
      if record is None or "rows" not in record:
        raise ValueError(f"{saved} is not a study record; delete it or restore it from git")
      record = dict(record, note=f"Its run folder is not on this machine: read from "
                    f"{os.path.relpath(saved, ROOT)}, saved when RESULTS.md was last generated "
                    "from the folder.")
    elif folder in previous:
      note = (f"_Kept from the previous RESULTS.md: neither the run folder nor "
              f"{os.path.relpath(saved, ROOT)} is on this machine._")
      record = previous[folder]
      if not record.endswith(note):
        record += "\n\n" + note
    else:
      raise ValueError(f"{folder} holds no readable {seeds_lib.STUDY_NAME} and there is no "
                       f"{os.path.relpath(saved, ROOT)}; run `python launch.py --config=... "
                       f"--seeds=... --workdir={folder}` first (run folders are not in git), or "
                       f"drop it from {STUDIES_FILE}")
    studies.append((folder, record))
  for saved, record in fresh:
    os.makedirs(os.path.dirname(saved), exist_ok=True)
    workdir_lib.write_json(saved, record)
  return studies


def render(studies: list[tuple[str, object]], command: str = COMMAND) -> str:
  """RESULTS.md: a generated-file note, then per study its command, table and summary (a study
  given as a str is a kept section, copied as it is)."""
  out = ["# Results", "",
         f"Generated by `{command}`: do not edit by hand; change {STUDIES_FILE} or the runs and "
         "regenerate. Each section is a seed study (`python launch.py --config=... --seeds=...`, "
         "README: Sweeps and seed studies); every seed is listed, failing ones included.", ""]
  for folder, record in studies:
    if isinstance(record, str):
      out += [record, ""]
      continue
    out += [f"## {record['config']} ({folder})", "", "```", record["command"], "```", ""]
    if record.get("note"):
      out += [record["note"], ""]
    out += seeds_lib.format_table(record["rows"], record["lengths"])
    history = seeds_lib.format_history(record["rows"], record["lengths"])
    if history:
      out += ["", "Every evaluation, by step (sequence error / symbol error):", ""] + history
    out.append("")
  return "\n".join(out)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
  parser.add_argument("folders", nargs="*", help=f"study folders (default: those in "
                      f"{STUDIES_FILE})")
  parser.add_argument("--out", default=None,
                      help="file to write (default: RESULTS.md at the repository root; needed "
                      "with study folders given as arguments)")
  argv = sys.argv[1:] if argv is None else list(argv)
  args = parser.parse_args(argv)
  try:
    if args.folders and args.out is None:
      raise ValueError("study folders given as arguments need --out=FILE (RESULTS.md is made "
                       f"from {STUDIES_FILE} only); e.g. --out=/tmp/mine.md")
    args.out = args.out or os.path.join(ROOT, "RESULTS.md")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
      raise ValueError(f"--out={args.out}: the folder {out_dir} does not exist; create it first")
    # every study is read before RESULTS.md is touched
    if args.folders:
      studies = [(f, load_study(f)) for f in args.folders]
    else:
      listing = os.path.join(ROOT, STUDIES_FILE)
      if not os.path.exists(listing):
        raise ValueError(f"no study folders given and no {STUDIES_FILE}; list one folder a line "
                         "there or give them as arguments")
      folders = read_study_list(listing)
      if not folders:
        raise ValueError(f"{STUDIES_FILE} lists no study folders; add one a line")
      previous = ""
      if os.path.exists(args.out):
        with open(args.out) as f:
          previous = f.read()
      studies = load_listed(folders, previous_sections(previous))
  except (OSError, ValueError) as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    return 1
  text = render(studies, shlex.join([*COMMAND.split(), *argv]))
  tmp = args.out + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, args.out)
  print(f"wrote {args.out}: {len(studies)} studies")
  return 0


if __name__ == "__main__":
  sys.exit(main())
