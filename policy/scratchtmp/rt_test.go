package scratch
import ("context";"fmt";"os";"testing";"github.com/secrun/secrun/policy")
func TestRT(t *testing.T){
 dir := os.Getenv("RTDIR")
 p, f, err := policy.RunTests(context.Background(), dir, os.Stdout)
 fmt.Println(p, f, err)
}
