package gui

import (
	"testing"
	"time"

	"github.com/cardwright/cardwright/agent"
	"github.com/cardwright/cardwright/agent/api"
)

func TestFinished(t *testing.T) {
	trayLang(t, "en")
	ok := agent.RecentJob{Origin: "https://cms.example.com", ID: "1", Reader: "R1", OK: true, ICCSN: "C0DE01", Finished: at(10, 0)}
	failed := agent.RecentJob{Origin: "", ID: "2", Reader: "R2", Code: api.Code("card_removed"), Finished: at(10, 1)}
	noSerial := agent.RecentJob{Origin: "https://cms.example.com", ID: "3", OK: true, Finished: at(10, 2)}
	sameID := ok
	sameID.Finished = at(10, 5) // the portal reused the id: another job
	type note struct{ title, content string }
	for _, tc := range []struct {
		name       string
		prev, next []agent.RecentJob
		want       []note
	}{
		{"nothing new", []agent.RecentJob{ok}, []agent.RecentJob{ok}, nil},
		{"first snapshot", nil, nil, nil},
		{"one ok", nil, []agent.RecentJob{ok}, []note{{"Card job finished", "https://cms.example.com · R1 · card C0DE01"}}},
		{"one failed", []agent.RecentJob{ok}, []agent.RecentJob{failed, ok}, []note{{"Card job failed", "this computer · R2 · card_removed"}}},
		{"oldest first", nil, []agent.RecentJob{noSerial, failed}, []note{
			{"Card job failed", "this computer · R2 · card_removed"},
			{"Card job finished", "https://cms.example.com"},
		}},
		{"same id, later", []agent.RecentJob{ok}, []agent.RecentJob{sameID, ok}, []note{{"Card job finished", "https://cms.example.com · R1 · card C0DE01"}}},
		{"old ones dropped", []agent.RecentJob{noSerial, failed, ok}, []agent.RecentJob{noSerial}, nil},
		{"many", nil, []agent.RecentJob{noSerial, sameID, failed, ok}, []note{{"4 card jobs finished", "1 failed; see Recent jobs."}}},
		{"many ok", nil, []agent.RecentJob{noSerial, sameID, ok, ok}, []note{{"4 card jobs finished", "All succeeded."}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Finished(State{Recent: tc.prev}, State{Recent: tc.next})
			if len(got) != len(tc.want) {
				t.Fatalf("%d notifications, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, n := range got {
				if n.Title != tc.want[i].title || n.Content != tc.want[i].content {
					t.Errorf("notification %d = %q / %q, want %q / %q", i, n.Title, n.Content, tc.want[i].title, tc.want[i].content)
				}
			}
		})
	}
}

func TestFinishedGerman(t *testing.T) {
	trayLang(t, "de")
	j := agent.RecentJob{ID: "1", Reader: "R1", OK: true, ICCSN: "C0DE01", Finished: time.Unix(1, 0)}
	n := Finished(State{}, State{Recent: []agent.RecentJob{j}})
	if len(n) != 1 || n[0].Title != "Kartenauftrag abgeschlossen" || n[0].Content != "dieser Computer · R1 · Karte C0DE01" {
		t.Errorf("German notification = %+v", n)
	}
}
