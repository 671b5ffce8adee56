#!/usr/bin/env bash
# Every design decision and contract section the repository cites must exist in
# docs/, and nothing may cite documents that are not in the repository (issue
# numbers, the old spec files). Fast and build-free, so scripts/test.sh runs it
# before the tests.
#
# Citations it checks:
#   design D3, docs/design.md D3, D9–D11, D3/D4, "D10 of docs/design.md"
#       -> a heading "## D3." in docs/design.md
#   docs/contract.md §D-6.3 (and "§I-4 and §I-6"), docs/nweb.md §5
#       -> a heading starting "§D-6.3" in that file
#   §P-/§I-/§D- alone -> docs/contract.md
# A citation may wrap onto the next line of the same comment.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard)
else
  files=$(find . -type f -not -path './.git/*' -not -path '*/target/*' -not -path '*/node_modules/*' | sed 's#^\./##')
fi

# Shipped install scripts are frozen; recorded tool output is data, not prose.
printf '%s\n' "$files" \
  | grep -E '\.(rs|sql|sh|sol|toml|md|ts|js|cjs|yml|yaml)$|^fixtures/scenarios/.*\.json$' \
  | grep -vE '^sql/archive/|(^|/)node_modules/|(^|/)target/|^fixtures/tool-output/|^scripts/check-doc-refs\.sh$' \
  | while read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done \
  | perl -e '
use strict; use warnings;
my (%decision, %section);
for my $doc (glob "docs/*.md") {
  open my $fh, "<", $doc or die "$doc: $!";
  while (<$fh>) {
    next unless /^#+\s+(.*)/;
    my $h = $1;
    $decision{$1} = 1 if $doc eq "docs/design.md" && $h =~ /^D(\d+)\./;
    $section{"$doc $1"} = 1 if $h =~ /^§((?:[A-Z]-)?[0-9]+(?:\.[0-9]+)*)/;
  }
}
die "check-doc-refs: docs/design.md has no \"## D<n>.\" headings\n" unless %decision;

my $D = qr/D\d+(?:\s*(?:,|\/|–|-|and|or)\s*D?\d+)*/;
my $S = qr/§(?:[A-Z]-)?\d+(?:\.\d+)*/;
my @stale = (
  [qr/\bissue \d+\b/i, "an issue number means nothing to a reader; cite the decision or give the reason"],
  [qr/\bxray-[a-z-]+\.md\b|\bnweb-architecture\b|\bexposure-identity\b/, "cites a spec outside the repository; cite docs/contract.md or docs/nweb.md"],
  [qr{\bshared/(?:docs|spec|fixtures)\b|\.\./spec/}, "points outside the repository"],
  [qr/\b(?:diff |scan-result |identity )?(?:contract|spec)\s+§\d/i, "unqualified section; write docs/contract.md §P-n, §I-n or §D-n"],
);
my $bad = 0;
sub report { my ($f, $n, $msg) = @_; print STDERR "$f:$n: $msg\n"; $bad++; }
sub decisions { my ($list) = @_; my @n;
  for my $part (split /\s*(?:,|\/|and|or)\s*/, $list) {
    if ($part =~ /^D?(\d+)\s*[–-]\s*D?(\d+)$/) { push @n, $1 .. $2 }
    elsif ($part =~ /^D?(\d+)$/) { push @n, $1 }
  }
  @n }

while (my $f = <STDIN>) {
  chomp $f;
  open my $fh, "<", $f or die "$f: $!";
  my @lines = <$fh>;
  close $fh;
  for my $i (0 .. $#lines) {
    my $line = $lines[$i]; chomp $line;
    my $next = $i < $#lines ? $lines[$i + 1] : "";
    chomp $next;
    $next =~ s{^\s*(?://[/!]?|--|#+|\*|;)?\s*}{};
    my $text = "$line $next";
    my $len = length $line;
    my $n = $i + 1;
    my @found;
    while ($text =~ /(?:docs\/design\.md`?|\bdesign(?: decisions?)?)\s+($D)/gi) { push @found, [$-[0], $1] }
    while ($text =~ /\b($D)\s+of\s+`?docs\/design\.md/g) { push @found, [$-[0], $1] }
    if ($f eq "docs/design.md") { while ($text =~ /\b(D\d+)\b/g) { push @found, [$-[0], $1] } }
    for (@found) { my ($at, $list) = @$_; next if $at >= $len;
      for my $d (decisions($list)) { report($f, $n, "cites design D$d, which docs/design.md does not have") unless $decision{$d} } }
    my @sec;
    while ($text =~ /(docs\/[\w-]+\.md)`?((?:\s*(?:,|and|or)?\s*$S)+)/g) {
      my ($at, $doc, $refs) = ($-[0], $1, $2);
      for my $r ($refs =~ /§((?:[A-Z]-)?\d+(?:\.\d+)*)/g) { push @sec, [$at, $r =~ /^[PID]-/ ? "docs/contract.md" : $doc, $r] }
    }
    while ($text =~ /(?<![\w.\/`])§([PID]-\d+(?:\.\d+)*)/g) { push @sec, [$-[0], "docs/contract.md", $1] }
    my $self = $f =~ m{^docs/[\w-]+\.md$} ? $f : undef;
    if ($self && $self eq "docs/nweb.md") { while ($text =~ /(?<![\w.\/`])§(\d+(?:\.\d+)*)/g) { push @sec, [$-[0], $self, $1] } }
    my %seen;
    for (@sec) { my ($at, $doc, $s) = @$_; next if $at >= $len || $seen{"$doc $s"}++;
      next if $doc !~ m{^docs/(?:contract|nweb)\.md$} && !grep { /^\Q$doc\E / } keys %section;
      report($f, $n, "cites $doc §$s, which is not a heading there") unless $section{"$doc $s"} }
    for my $st (@stale) { my ($re, $msg) = @$st;
      while ($line =~ /$re/g) { report($f, $n, "\"$&\": $msg") } }
  }
}
if ($bad) { print STDERR "check-doc-refs: $bad unresolved reference(s)\n"; exit 1 }
'
