// goviews computes, with Go's own pprof library (Debian's
// golang-github-google-pprof-dev, built offline in GOPATH mode), what
// profefs's views must give, so that tests/integration/views.sh can
// compare them:
//
//	goviews folded FILE [SAMPLE]   folded stacks: "root;...;leaf VALUE" per
//	                               distinct stack, sorted, zero stacks left out
//	goviews synth N OUT            writes a CPU profile of N distinct stacks
//	                               (depth 8..40 over 3,000 functions in 60
//	                               packages, values skewed: a few hot stacks,
//	                               a long tail), for the flame graph's size
//	goviews deep N OUT             writes a CPU profile of one sample whose
//	                               stack is N frames deep (bad input: the
//	                               views must not recurse that deep)
//
// Frames are function names, the lines of a location outermost first (as
// `go tool pprof -traces` lists them, reversed to root first); a location
// without lines, or a line whose function has no name, is "0x<address>".
// The sample type is SAMPLE, else default_sample_type, else the last, as
// pprof picks it.
package main

import (
	"fmt"
	"math/rand"
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

func synth(n int, out string) error {
	r := rand.New(rand.NewSource(19))
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"},
			{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10000000,
		TimeNanos:  1700000000000000000,
	}
	const nfn = 3000
	var locs []*profile.Location
	for i := 0; i < nfn; i++ {
		fn := &profile.Function{ID: uint64(i + 1),
			Name:     fmt.Sprintf("example.com/pkg%d.Func%d", i%60, i),
			Filename: fmt.Sprintf("pkg%d.go", i%60)}
		p.Function = append(p.Function, fn)
		loc := &profile.Location{ID: uint64(i + 1), Address: uint64(0x1000 + 16*i),
			Line: []profile.Line{{Function: fn, Line: int64(i)}}}
		p.Location = append(p.Location, loc)
		locs = append(locs, loc)
	}
	seen := map[string]bool{}
	for len(p.Sample) < n {
		depth := 8 + r.Intn(33)
		stack := make([]*profile.Location, depth)
		key := ""
		for d := 0; d < depth; d++ {
			// shallow frames come from few functions: a tree, not noise
			width := 2 + d*d*3
			if width > nfn {
				width = nfn
			}
			stack[depth-1-d] = locs[r.Intn(width)]
			key += fmt.Sprintf("%d;", stack[depth-1-d].ID)
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		v := int64(1)
		if r.Intn(100) == 0 {
			v = int64(1 + r.Intn(500))
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: stack,
			Value: []int64{v, v * 10000000}})
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	return p.Write(f)
}

func deep(n int, out string) error {
	fn := &profile.Function{ID: 1, Name: "main.recurse"}
	leaf := &profile.Function{ID: 2, Name: "main.leaf"}
	loc := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: fn}}}
	lloc := &profile.Location{ID: 2, Address: 0x2000, Line: []profile.Line{{Function: leaf}}}
	stack := []*profile.Location{lloc}
	for i := 1; i < n; i++ {
		stack = append(stack, loc)
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10000000,
		TimeNanos:  1700000000000000000,
		Function:   []*profile.Function{fn, leaf},
		Location:   []*profile.Location{loc, lloc},
		Sample:     []*profile.Sample{{Location: stack, Value: []int64{10000000}}},
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	return p.Write(f)
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "deep" {
		var n int
		fmt.Sscan(os.Args[2], &n)
		if err := deep(n, os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 4 && os.Args[1] == "synth" {
		var n int
		fmt.Sscan(os.Args[2], &n)
		if err := synth(n, os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
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
