package secrun_test

import data.secrun

test_run_allowed if {
	secrun.allow with input as {"request": {"source": "run"}}
}

# Wrong on purpose: exec is not allowed by this policy.
test_exec_allowed if {
	secrun.allow with input as {"request": {"source": "exec"}}
}
