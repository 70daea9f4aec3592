package journal

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Backlog counts the finished jobs (done or interrupted) whose results no
// portal has acknowledged yet: the station's journal backlog metric
// (spec/station.md "Observability"). Running jobs are not counted.
func (j *Journal) Backlog() (int, error) {
	n := 0
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(_, v []byte) error {
			var r struct {
				State string `json:"state"`
			}
			if json.Unmarshal(v, &r) == nil && r.State != StateRunning {
				n++
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("counting the journal's backlog: %w", err)
	}
	return n, nil
}
