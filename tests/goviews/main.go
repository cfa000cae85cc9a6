// goviews computes, with Go's own pprof library (Debian's
// golang-github-google-pprof-dev, built offline in GOPATH mode), what
// profefs's views must give, so that tests/integration/views.sh can
// compare them:
//
//	goviews folded FILE [SAMPLE]   folded stacks: "root;...;leaf VALUE" per
//	                               distinct stack, sorted, zero stacks left out
//
// Frames are function names, the lines of a location outermost first (as
// `go tool pprof -traces` lists them, reversed to root first); a location
// without lines, or a line whose function has no name, is "0x<address>".
// The sample type is SAMPLE, else default_sample_type, else the last, as
// pprof picks it.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

func sampleIndex(p *profile.Profile, name string) (int, error) {
	if name == "" {
		name = p.DefaultSampleType
	}
	if name == "" {
		return len(p.SampleType) - 1, nil
	}
	for i, st := range p.SampleType {
		if st.Type == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no sample type %q", name)
}

func folded(p *profile.Profile, idx int) []string {
	sums := map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[idx]
		if v == 0 {
			continue
		}
		var frames []string
		for i := len(s.Location) - 1; i >= 0; i-- {
			loc := s.Location[i]
			if len(loc.Line) == 0 {
				frames = append(frames, fmt.Sprintf("0x%x", loc.Address))
				continue
			}
			for j := len(loc.Line) - 1; j >= 0; j-- {
				name := ""
				if loc.Line[j].Function != nil {
					name = loc.Line[j].Function.Name
				}
				if name == "" {
					name = fmt.Sprintf("0x%x", loc.Address)
				}
				frames = append(frames, name)
			}
		}
		if len(frames) > 0 {
			sums[strings.Join(frames, ";")] += v
		}
	}
	var lines []string
	for k, v := range sums {
		if v != 0 {
			lines = append(lines, fmt.Sprintf("%s %d", k, v))
		}
	}
	sort.Strings(lines)
	return lines
}

func main() {
	if len(os.Args) < 3 || os.Args[1] != "folded" {
		fmt.Fprintln(os.Stderr, "usage: goviews folded FILE [SAMPLE]")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p, err := profile.Parse(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sample := ""
	if len(os.Args) > 3 {
		sample = os.Args[3]
	}
	idx, err := sampleIndex(p, sample)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, l := range folded(p, idx) {
		fmt.Println(l)
	}
}
