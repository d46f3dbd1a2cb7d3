package compose

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// markerPath is the drain marker inside a container being drained. The record in
// state_dir is only seen by a daemon with that state_dir; the marker travels with the
// container, so any daemon on the engine finds it: one that starts without the state_dir
// and a new HA leader on another host alike. Labels cannot be changed on a running
// container; a file written through the Engine API (docker cp) can, on any image,
// FROM scratch included.
const markerPath = "/.autoscalerd-drain.json"

// marker is what the file holds.
type marker struct {
	cdrain
	// Resumed: the drain was called off and the container takes work again. The Engine
	// API cannot delete a file, so the marker is overwritten with this set.
	Resumed bool `json:"resumed,omitempty"`
}

// writeMarker writes m into container id. It fails on a read-only root filesystem; the
// caller says what that costs.
func writeMarker(ctx context.Context, c api, id string, m marker) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path.Base(markerPath), Mode: 0o644, Size: int64(len(body))}); err != nil {
		return err
	}
	if _, err := tw.Write(body); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err = c.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: path.Dir(markerPath), Content: &buf})
	return err
}

// readMarker reads container id's marker; ok is false when it has none.
func readMarker(ctx context.Context, c api, id string) (m marker, ok bool, err error) {
	res, err := c.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: markerPath})
	if cerrdefs.IsNotFound(err) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		return marker{}, false, fmt.Errorf("reading %s: %w", markerPath, err)
	}
	b, err := io.ReadAll(io.LimitReader(tr, 64<<10))
	if err != nil {
		return marker{}, false, fmt.Errorf("reading %s: %w", markerPath, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return marker{}, false, fmt.Errorf("%s: %w", markerPath, err)
	}
	return m, true, nil
}

// markers reads the markers of the running containers rs, by container ID. A container
// that went away meanwhile has none.
func (t *Target) markers(ctx context.Context, c api, rs []replica) (map[string]marker, error) {
	found := make([]*marker, len(rs))
	errs := t.parallelDo(ctx, len(rs), func(ctx context.Context, i int) error {
		m, ok, err := readMarker(ctx, c, rs[i].id)
		if err != nil {
			if _, ierr := c.ContainerInspect(ctx, rs[i].id, client.ContainerInspectOptions{}); cerrdefs.IsNotFound(ierr) {
				return nil
			}
			return fmt.Errorf("%s: %w", rs[i].name, err)
		}
		if ok {
			m.ID = rs[i].id // the marker is the container's own, whatever it says
			found[i] = &m
		}
		return nil
	})
	out := map[string]marker{}
	for _, m := range found {
		if m != nil {
			out[m.ID] = *m
		}
	}
	return out, errors.Join(errs...)
}
