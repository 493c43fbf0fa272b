package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/access/accesstest"
	"github.com/berth-dev/berth/org"
)

// accessScenario: just-in-time access in the browser, with Identity Center,
// the Identity Store and Organizations at the wire (accesstest): a request
// with a field error first, approved by another lead through the API, then
// shown as held with its time left; and a request of another user approved
// in the browser.
func accessScenario(t *testing.T, b *tab, dbURL string) {
	w := accesstest.NewWorld(t)
	s, srv := startHub(t, dbURL)
	b.base = srv.URL
	c, err := org.Parse("accounts.yaml", []byte(accesstest.Catalog))
	if err != nil {
		t.Fatal(err)
	}
	center, dir, accounts := access.NewAWS(w.Config(), accesstest.InstanceARN, accesstest.StoreID)
	center.Sleep = func(context.Context, time.Duration) error { return nil }
	s.Access = &access.Engine{Catalog: c, Directory: dir, Accounts: accounts, Center: center, Store: s.DB.Access(), Now: time.Now, ID: "replica-a"}

	b.open("/setup?code=" + setupCode)
	b.fill(map[string]string{"#email": "ana@acme.example"})
	b.click("form button[type=submit]")
	b.waitText("No projects yet")
	adminToken := b.newToken("admin")
	api := func(token, method, path, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, b.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil {
			json.Unmarshal(data, out)
		}
		return resp.StatusCode
	}
	tokens := map[string]string{}
	for _, name := range []string{"bo", "cy"} {
		var u struct {
			Token struct{ Token string } `json:"token"`
		}
		if code := api(adminToken, "POST", "/api/v1/users", `{"email":"`+name+`@acme.example"}`, &u); code != 201 {
			t.Fatalf("create %s: %d", name, code)
		}
		tokens[name] = u.Token.Token
	}

	b.open("/access")
	b.waitText("Request access")
	b.check("access")
	b.fill(map[string]string{"#f-escalation": "pay-prod/AdministratorAccess", "#f-duration": "3h", "#f-reason": "incident 42"})
	b.click("form[action='/access/requests'] button[type=submit]")
	b.waitText("There is a problem")
	if b.attr("#f-duration", "aria-invalid") != "true" {
		t.Errorf("a duration over the maximum is not on its field: %s", b.text(".error-summary"))
	}
	b.check("access-field-error")
	b.fill(map[string]string{"#f-escalation": "pay-prod/AdministratorAccess", "#f-duration": "1h", "#f-reason": "incident 42"})
	b.click("form[action='/access/requests'] button[type=submit]")
	b.waitText("approvers (leads) are asked")
	var mine struct {
		Requests []struct{ ID int64 } `json:"requests"`
	}
	if code := api(tokens["bo"], "GET", "/api/v1/access/requests?pending=1", "", &mine); code != 200 || len(mine.Requests) != 1 {
		t.Fatalf("bo's pending requests: %d %+v", code, mine)
	}
	if code := api(tokens["bo"], "POST", "/api/v1/access/requests/"+itoa(mine.Requests[0].ID)+"/approve", `{"reason":"go ahead"}`, nil); code != 200 {
		t.Fatalf("bo approves: %d", code)
	}
	// cy asks; ana, a lead, decides in the browser.
	if code := api(tokens["cy"], "POST", "/api/v1/access/requests", `{"account":"pay-prod","permission_set":"ReadOnlyAccess","duration":"2h","reason":"debug payments"}`, nil); code != 201 {
		t.Fatalf("cy asks: %d", code)
	}
	b.open("/access")
	b.waitText("debug payments")
	if got := b.text("section[aria-labelledby=active]"); !strings.Contains(got, "AdministratorAccess") || !strings.Contains(got, "min") {
		t.Errorf("the held access and its time left: %s", got)
	}
	b.check("access-pending")
	b.fill(map[string]string{"input[id^=reason-]": "ok for today"})
	b.click("form.decision button[type=submit]")
	b.waitText("of cy@acme.example is approved")
	if !w.Has("u-cy", accesstest.ReadARN) {
		t.Error("approved in the browser, but no assignment was made")
	}
	b.check("access-approved")
}
