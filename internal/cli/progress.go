package cli

import (
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/berth-dev/berth/artifact"
)

// progress draws one bar per region on stderr while a transfer runs.
type progress struct {
	once sync.Once
	p    *mpb.Progress
	g    *Globals
}

// newProgress returns nil when bars would be noise: quiet, JSON output or
// stderr not a terminal.
func (g *Globals) newProgress() *progress {
	if g.Quiet || g.json() || !g.StderrTerminal {
		return nil
	}
	return &progress{g: g}
}

func (p *progress) bar(region string, total int64) artifact.ProgressBar {
	p.once.Do(func() { p.p = mpb.New(mpb.WithOutput(p.g.Stderr), mpb.WithWidth(40)) })
	b := p.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(region, decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 16})),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
	)
	return &bar{b: b}
}

func (p *progress) wait() {
	if p != nil && p.p != nil {
		p.p.Wait()
	}
}

type bar struct{ b *mpb.Bar }

func (b *bar) Add(n int) { b.b.IncrBy(n) }
func (b *bar) Done(err error) {
	if err != nil {
		b.b.Abort(false)
		return
	}
	b.b.SetTotal(-1, true)
}

func (g *Globals) attachProgress(c *artifact.Client) *progress {
	p := g.newProgress()
	if p != nil {
		c.Progress = p.bar
	}
	return p
}
