package main

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writePlot draws library throughput against goroutines, one panel per
// record size, one line per implementation (medians of the runs).
func writePlot(path string, cells []libCell, sizes []int, title string) error {
	impls := libImpls()
	row := make([]*plot.Plot, 0, len(sizes))
	for _, size := range sizes {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s records", sizeName(size))
		p.X.Label.Text = "goroutines"
		p.Y.Label.Text = "M records/s (median)"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 1, Label: "1"}, {Value: 2, Label: "2"}, {Value: 4, Label: "4"}, {Value: 8, Label: "8"}})
		p.Y.Min = 0
		p.Legend.Top = true
		p.Legend.Left = true
		var args []any
		for _, im := range impls {
			var xys plotter.XYs
			for _, c := range cells {
				if c.size == size && len(c.rates[im.key]) > 0 {
					xys = append(xys, plotter.XY{X: float64(c.g), Y: median(c.rates[im.key]) / 1e6})
				}
			}
			if len(xys) > 0 {
				args = append(args, im.name, xys)
			}
		}
		if len(args) == 0 {
			continue
		}
		if err := plotutil.AddLinePoints(p, args...); err != nil {
			return err
		}
		row = append(row, p)
	}
	if len(row) == 0 {
		return nil
	}
	row[0].Title.Text = title + "\n" + row[0].Title.Text
	const w, h = 420, 420
	img := vgimg.New(vg.Points(float64(w*len(row))), vg.Points(h))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for j, p := range row {
		p.Draw(canvases[0][j])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sizeName(size int) string {
	if size >= 1024 && size%1024 == 0 {
		return fmt.Sprintf("%d KiB", size/1024)
	}
	return fmt.Sprintf("%d B", size)
}
