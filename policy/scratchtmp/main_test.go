package scratch
import ("context";"fmt";"os";"testing";"github.com/secrun/secrun/policy")
func TestX(t *testing.T){
 for _, f := range []string{"hardened","docker-default","runc-bundle"} {
 fh, _ := os.Open("../../testdata/policy/"+f+".json")
 in, err := policy.ReadInput(fh)
 if err != nil { t.Fatal(err) }
 for _, n := range []string{"restricted","baseline","cis-docker"} {
  e, err := policy.Load(context.Background(), n)
  if err != nil { t.Fatal(err) }
  d, err := e.Eval(context.Background(), in)
  fmt.Println("==", f, n, d.Allowed, err)
  if d.Err() != nil { fmt.Println(d.Err()) }
 }}
}
