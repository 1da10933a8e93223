package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.etcd.io/bbolt"
)

// registry.db layout (bbolt):
//
//	repos/<name>/blobs/<digest>            = size (decimal)
//	repos/<name>/manifests/<digest>        = manifestRecord (JSON)
//	repos/<name>/tags/<tag>                = digest
//	repos/<name>/referrers/<subject> <dig> = ocispec.Descriptor (JSON)
//
// Bucket keys are sorted bytes, which gives the lexical order the tags list
// and catalog need, and a cursor Seek gives their `last` pagination.
var (
	bucketRepos     = []byte("repos")
	bucketBlobs     = []byte("blobs")
	bucketManifests = []byte("manifests")
	bucketTags      = []byte("tags")
	bucketReferrers = []byte("referrers")
)

var zeroTime time.Time

// manifestRecord is what the registry remembers about a manifest besides
// its bytes (which live in the blob store under the same digest).
type manifestRecord struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Subject   digest.Digest `json:"subject,omitempty"`
}

// repoBucket returns the sub-bucket kind of repository name, or nil.
func repoBucket(tx *bbolt.Tx, name string, kind []byte) *bbolt.Bucket {
	repo := tx.Bucket(bucketRepos).Bucket([]byte(name))
	if repo == nil {
		return nil
	}
	return repo.Bucket(kind)
}

// repoBucketCreate returns the sub-bucket kind of repository name, creating
// the repository and all its sub-buckets on first use.
func repoBucketCreate(tx *bbolt.Tx, name string, kind []byte) (*bbolt.Bucket, error) {
	repo, err := tx.Bucket(bucketRepos).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("registry: create repository %s: %w", name, err)
	}
	for _, k := range [][]byte{bucketBlobs, bucketManifests, bucketTags, bucketReferrers} {
		if _, err := repo.CreateBucketIfNotExists(k); err != nil {
			return nil, fmt.Errorf("registry: create repository %s: %w", name, err)
		}
	}
	return repo.Bucket(kind), nil
}

func (s *Server) repoExists(name string) bool {
	found := false
	s.db.View(func(tx *bbolt.Tx) error {
		found = tx.Bucket(bucketRepos).Bucket([]byte(name)) != nil
		return nil
	})
	return found
}

func (s *Server) hasBlobLink(name string, d digest.Digest) bool {
	found := false
	s.db.View(func(tx *bbolt.Tx) error {
		if b := repoBucket(tx, name, bucketBlobs); b != nil {
			found = b.Get([]byte(d)) != nil
		}
		return nil
	})
	return found
}

// linkBlob links a stored blob into a repository and touches it, so a GC
// running next spares it for its grace period.
func (s *Server) linkBlob(name string, d digest.Digest, size int64) error {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.blobs.touch(d); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := repoBucketCreate(tx, name, bucketBlobs)
		if err != nil {
			return err
		}
		return b.Put([]byte(d), []byte(strconv.FormatInt(size, 10)))
	})
}

func (s *Server) unlinkBlob(name string, d digest.Digest) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := repoBucket(tx, name, bucketBlobs)
		if b == nil || b.Get([]byte(d)) == nil {
			return errBlobUnknown(d.String())
		}
		return b.Delete([]byte(d))
	})
}

// resolve turns a tag or digest reference into the manifest's digest and
// record, or MANIFEST_UNKNOWN.
func (s *Server) resolve(name, ref string) (digest.Digest, manifestRecord, error) {
	var d digest.Digest
	var rec manifestRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		if isDigestRef(ref) {
			d = digest.Digest(ref)
		} else {
			tags := repoBucket(tx, name, bucketTags)
			if tags == nil {
				return errManifestUnknown(ref)
			}
			v := tags.Get([]byte(ref))
			if v == nil {
				return errManifestUnknown(ref)
			}
			d = digest.Digest(v)
		}
		ms := repoBucket(tx, name, bucketManifests)
		if ms == nil {
			return errManifestUnknown(ref)
		}
		v := ms.Get([]byte(d))
		if v == nil {
			return errManifestUnknown(ref)
		}
		return json.Unmarshal(v, &rec)
	})
	return d, rec, err
}

// storeManifest records a pushed manifest, its tags and, when it has a
// subject, its entry in the subject's referrers, in one transaction.
func (s *Server) storeManifest(name string, d digest.Digest, rec manifestRecord, tags []string, referrer *ocispec.Descriptor) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		ms, err := repoBucketCreate(tx, name, bucketManifests)
		if err != nil {
			return err
		}
		v, _ := json.Marshal(rec)
		if err := ms.Put([]byte(d), v); err != nil {
			return err
		}
		tb := repoBucket(tx, name, bucketTags)
		for _, t := range tags {
			if err := tb.Put([]byte(t), []byte(d)); err != nil {
				return err
			}
		}
		if referrer != nil && rec.Subject != "" {
			v, _ := json.Marshal(referrer)
			if err := repoBucket(tx, name, bucketReferrers).Put(referrerKey(rec.Subject, d), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func referrerKey(subject, d digest.Digest) []byte { return []byte(string(subject) + " " + string(d)) }

// removeManifest deletes a manifest, every tag that points at it and its
// referrers entry.
func (s *Server) removeManifest(name string, d digest.Digest) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		ms := repoBucket(tx, name, bucketManifests)
		if ms == nil {
			return errManifestUnknown(d.String())
		}
		v := ms.Get([]byte(d))
		if v == nil {
			return errManifestUnknown(d.String())
		}
		var rec manifestRecord
		json.Unmarshal(v, &rec)
		if err := ms.Delete([]byte(d)); err != nil {
			return err
		}
		tb := repoBucket(tx, name, bucketTags)
		var drop [][]byte
		tb.ForEach(func(k, v []byte) error {
			if string(v) == string(d) {
				drop = append(drop, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range drop {
			if err := tb.Delete(k); err != nil {
				return err
			}
		}
		if rec.Subject != "" {
			return repoBucket(tx, name, bucketReferrers).Delete(referrerKey(rec.Subject, d))
		}
		return nil
	})
}

func (s *Server) removeTag(name, tag string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		tb := repoBucket(tx, name, bucketTags)
		if tb == nil || tb.Get([]byte(tag)) == nil {
			return errManifestUnknown(tag)
		}
		return tb.Delete([]byte(tag))
	})
}

// page returns up to n keys of a bucket (n < 0: all) that sort after last,
// and whether more follow.
func page(b *bbolt.Bucket, n int, last string, keep func(k []byte) bool) ([]string, bool) {
	out := []string{}
	if b == nil || n == 0 {
		return out, false
	}
	c := b.Cursor()
	var k []byte
	if last == "" {
		k, _ = c.First()
	} else {
		k, _ = c.Seek([]byte(last))
		if k != nil && string(k) == last {
			k, _ = c.Next()
		}
	}
	for ; k != nil; k, _ = c.Next() {
		if keep != nil && !keep(k) {
			continue
		}
		if n >= 0 && len(out) == n {
			return out, true
		}
		out = append(out, string(k))
	}
	return out, false
}

// tagPage lists a repository's tags in lexical order after last.
func (s *Server) tagPage(name string, n int, last string) (tags []string, more bool, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketRepos).Bucket([]byte(name)) == nil {
			return errNameUnknown(name)
		}
		tags, more = page(repoBucket(tx, name, bucketTags), n, last, nil)
		return nil
	})
	return tags, more, err
}

// repoPage lists repository names in lexical order after last.
func (s *Server) repoPage(n int, last string) (repos []string, more bool, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		repos, more = page(tx.Bucket(bucketRepos), n, last, nil)
		return nil
	})
	return repos, more, err
}

// referrersOf returns the descriptors of manifests whose subject is d.
func (s *Server) referrersOf(name string, d digest.Digest) ([]ocispec.Descriptor, error) {
	out := []ocispec.Descriptor{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := repoBucket(tx, name, bucketReferrers)
		if b == nil {
			return nil
		}
		prefix := []byte(string(d) + " ")
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var desc ocispec.Descriptor
			if err := json.Unmarshal(v, &desc); err != nil {
				return fmt.Errorf("registry: decode referrer %s: %w", k, err)
			}
			out = append(out, desc)
		}
		return nil
	})
	return out, err
}
