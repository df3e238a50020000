#!/usr/bin/env bash
# One error currency above the core (ARCHITECTURE.md, "Errors"): a value or its keymaster::Problem
# (`Expected<T>`), or an exception at an I/O boundary. Fails listing every place in src/ or
# include/ that brings back an older idiom:
#   - a std::variant< ... > with a std::string or an ...Error alternative (a value or an error);
#   - an out-parameter std::string& / std::string* named error, err or why;
#   - a local `std::string NAME;` (NAME: error, err, why, or ending in _error) later tested with
#     `NAME.empty()` in the same file;
#   - a struct pairing a std::optional<...> member with a `std::string why` member (members:
#     declarations after a line start, `{`, `}` or `;`: a `why` parameter of a member function is
#     not one).
# A string initialised from a C library's own error (postgres_db.cpp's PQpipelineSync result) is
# not the idiom: only a default-constructed local counts.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}  # a source tree (default: this one)
cd "$root"
[[ -d src && -d include ]] || { echo "no src/ and include/ under $root"; exit 1; }
mapfile -t files < <(find src include -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) | sort)
found=$(perl -e '
  my $out = "";
  for my $f (@ARGV) {
    open(my $fh, "<", $f) or die "$f: $!";
    local $/;
    my $text = <$fh>;
    close $fh;
    my $at = sub { my $line = 1 + (substr($text, 0, $_[0]) =~ tr/\n//); "$f:$line: $_[1]\n" };
    # A variant (its <...> balanced, over lines) with a string or an ...Error alternative.
    while ($text =~ /std::variant\s*(<(?:[^<>]++|(?1))*>)/g) {
      my ($args, $pos) = ($1, $-[0]);
      $args =~ s/\s+/ /g;
      $out .= $at->($pos, "std::variant$args: a value or an error is Expected<T>")
        if $args =~ /\bstd::string\b(?!_view)|\w*Error\b/;
    }
    # An error out-parameter.
    while ($text =~ /(?<!const )\bstd::string\s*[&*]\s*(error|err|why)\b/g) {
      $out .= $at->($-[0], "$& out-parameter: return Expected<T> (or a Problem)");
    }
    # A default-constructed local error string, later tested for emptiness.
    while ($text =~ /^[ \t]+std::string[ \t]+(error|err|why|\w+_error)[ \t]*;/mg) {
      my ($name, $pos) = ($1, $-[0]);
      $out .= $at->($pos, "std::string $name; ... $name.empty(): return or co_return the Problem instead")
        if substr($text, $pos) =~ /(?<![\w.>])\Q$name\E\.empty\(\)/;
    }
    # A struct pairing an optional with a why.
    while ($text =~ /\bstruct\s+(\w+)[^;{()]*(\{(?:[^{}]++|(?2))*\})/g) {
      my ($name, $body, $pos) = ($1, $2, $-[0]);
      $out .= $at->($pos, "struct $name: std::optional<...> with std::string why is Expected<T>")
        if $body =~ /(?:^|[{};])[ \t]*std::optional\s*</m && $body =~ /(?:^|[{};])[ \t]*std::string[ \t]+why[ \t]*[;={]/m;
    }
  }
  print $out;
' "${files[@]}")
if [[ -n "$found" ]]; then
  echo "an error idiom beside Expected<T>/Problem (include/keymaster/common/fault.hpp):"
  printf '%s\n' "$found"
  exit 1
fi
# The check itself sees what it looks for: the currency it keeps is where it is declared.
grep -qE 'using Expected = boost::system::result<T, Problem>' include/keymaster/common/fault.hpp ||
  { echo "include/keymaster/common/fault.hpp declares no Expected<T>: cannot check"; exit 1; }
echo "one error currency: no variant-with-a-string, error out-parameter, error string tested for empty, or optional+why in src/ or include/"
