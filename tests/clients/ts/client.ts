// A frontend's first steps, typed by the types openapi-typescript generates from the live schema
// ("api-schema" is mapped to them by the test's tsconfig). Compiled with `tsc --noEmit`, not run.
import createClient from "openapi-fetch";
import type { components, paths } from "api-schema";

type Job = components["schemas"]["JobOutput"];

export async function story(baseUrl: string, email: string, password: string): Promise<Job> {
  const api = createClient<paths>({ baseUrl });

  const registered = await api.POST("/api/auth/register", {
    body: { email, password, password_confirm: password, name: "Types" },
  });
  if (registered.error) throw new Error(registered.error.error.message);
  const login = await api.POST("/api/auth/token", { body: { email, password } });
  if (!login.data) throw new Error(login.error.error.code);
  const headers = { Authorization: `Bearer ${login.data.access}` };

  const balance = await api.GET("/api/credits/balance", { headers });
  const credits: number = balance.data?.balance ?? 0;

  const created = await api.POST("/api/jobs", {
    headers: { ...headers, "Idempotency-Key": crypto.randomUUID() },
    body: { kind: "account_batch", requested_count: Math.min(credits, 1), params: {} },
  });
  if (!created.data) throw new Error(created.error.error.message);
  let job: Job = created.data;

  const finished: Job["status"][] = ["completed", "failed", "cancelled"];
  while (!finished.includes(job.status)) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const polled = await api.GET("/api/jobs/{job_id}", { params: { path: { job_id: job.id } }, headers });
    if (!polled.data) throw new Error(polled.error.error.message);
    job = polled.data;
  }
  return job;
}
