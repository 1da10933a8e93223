package image

import (
	"fmt"
	"sort"
	"strings"

	"berth/internal/errdefs"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// NormalizeRef turns a user's reference into the familiar form the store
// keys tags by: "busybox" and "docker.io/library/busybox" become
// "busybox:latest"; a digested reference keeps its digest.
func NormalizeRef(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid reference format %q: %w", ref, err))
	}
	return reference.FamiliarString(reference.TagNameOnly(named)), nil
}

func isDigestRef(ref string) bool { return strings.Contains(ref, "@") }

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func notFound(name string) error {
	return errdefs.NotFound(fmt.Errorf("No such image: %s", name))
}

// Resolve finds an image by tag (familiar or fully qualified, ":latest" by
// default), by digested reference, by full ID with or without "sha256:", or
// by a unique ID prefix. A name that is both a possible tag and an ID
// prefix is tried as a tag first, as docker does.
func (s *Store) Resolve(name string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.resolveLocked(name)
	if err != nil {
		return nil, err
	}
	return img.clone(), nil
}

func (s *Store) resolveLocked(name string) (*Image, error) {
	if name == "" {
		return nil, notFound(name)
	}
	if hexPart, ok := strings.CutPrefix(name, "sha256:"); ok {
		return s.byPrefix(name, hexPart)
	}
	display := name
	if key, err := NormalizeRef(name); err == nil {
		display = key
		if img := s.byRef(key); img != nil {
			return img, nil
		}
	}
	if isHex(name) && len(name) <= 64 {
		if img, err := s.byPrefix(name, name); err == nil {
			return img, nil
		}
	}
	return nil, notFound(display)
}

func (s *Store) byRef(key string) *Image {
	for _, img := range s.images {
		for _, t := range img.RepoTags {
			if t == key {
				return img
			}
		}
		for _, t := range img.RepoDigests {
			if t == key {
				return img
			}
		}
	}
	return nil
}

func (s *Store) byPrefix(name, prefix string) (*Image, error) {
	if !isHex(prefix) || len(prefix) > 64 {
		return nil, notFound(name)
	}
	var found *Image
	for id, img := range s.images {
		if strings.HasPrefix(id.Encoded(), prefix) {
			if found != nil {
				return nil, notFound(name) // ambiguous, as docker answers
			}
			found = img
		}
	}
	if found == nil {
		return nil, notFound(name)
	}
	return found, nil
}

// List returns every image, newest first.
func (s *Store) List() ([]*Image, error) {
	s.mu.Lock()
	out := make([]*Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, img.clone())
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		ci, cj := out[i].Config.Created, out[j].Config.Created
		if ci != nil && cj != nil && !ci.Equal(*cj) {
			return ci.After(*cj)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Tag points ref (normalised to its familiar form) at image id. A tag that
// named another image moves.
func (s *Store) Tag(id digest.Digest, ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid reference format %q: %w", ref, err))
	}
	if _, ok := named.(reference.Digested); ok {
		return errdefs.InvalidParameter(fmt.Errorf("refusing to create a tag with a digest reference: %s", ref))
	}
	key := reference.FamiliarString(reference.TagNameOnly(named))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[id]; !ok {
		return notFound(id.String())
	}
	return s.setRefsLocked(map[string]digest.Digest{key: id})
}

// SetRepoDigest records a digested reference ("name@sha256:...", as a pull
// learns it) for an image.
func (s *Store) SetRepoDigest(id digest.Digest, ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid reference format %q: %w", ref, err))
	}
	if _, ok := named.(reference.Digested); !ok {
		return errdefs.InvalidParameter(fmt.Errorf("not a digested reference: %s", ref))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[id]; !ok {
		return notFound(id.String())
	}
	return s.setRefsLocked(map[string]digest.Digest{reference.FamiliarString(named): id})
}

// setRefsLocked writes refs in one transaction and moves them in memory.
func (s *Store) setRefsLocked(refs map[string]digest.Digest) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRefs)
		for k, id := range refs {
			if err := b.Put([]byte(k), []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("image: write references: %w", err)
	}
	for k, id := range refs {
		if old := s.byRef(k); old != nil {
			removeRef(old, k)
		}
		addRef(s.images[id], k)
	}
	return nil
}

// Untag removes a reference. It reports whether the reference existed.
func (s *Store) Untag(ref string) (bool, error) {
	key, err := NormalizeRef(ref)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	img := s.byRef(key)
	if img == nil {
		return false, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRefs).Delete([]byte(key)) })
	if err != nil {
		return false, fmt.Errorf("image: untag %s: %w", key, err)
	}
	removeRef(img, key)
	return true, nil
}
