#!/usr/bin/env bash
# A CI step for any other CI: says what the exit code of `switchyard apply` asks of the reader.
npx switchyard apply -f tenants/ && exit 0
code=$?
case $code in
  1) echo "fix the manifests: see the errors above" ;;
  2) echo "refused or in conflict: someone must resolve it (see above)" ;;
  *) echo "control plane failing or unreachable: retry the job later" ;;
esac
exit $code
