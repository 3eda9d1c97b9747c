// The issue-12 journey, typed against the types openapi-typescript generates from
// api_spec/openapi.json (tests/test_generated_clients.py runs `tsc --noEmit --strict` on it).
// It is compiled, not run: what it checks is that a mobile team's code type-checks against
// the contract -- request bodies, path and query parameters, response fields, enums, nulls.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema";

type Schemas = components["schemas"];

function signedIn(baseUrl: string, token: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}

function must<T>(answer: { data?: T; error?: Schemas["Error"] }): T {
  if (answer.data === undefined) {
    throw new Error(answer.error ? `${answer.error.code}: ${answer.error.message}` : "no body");
  }
  return answer.data;
}

export async function journey(
  baseUrl: string,
  tokens: { maria: string; lucia: string; priya: string },
): Promise<void> {
  const maria = signedIn(baseUrl, tokens.maria);
  const lucia = signedIn(baseUrl, tokens.lucia);
  const priya = signedIn(baseUrl, tokens.priya);

  // María reads her profile and sends back what she read, with one change.
  const me: Schemas["Me"] = must(await maria.GET("/me"));
  const patientId: number | null = me.patient_id;
  if (patientId === null) throw new Error("María has her own patient record");
  const { id: _id, email: _email, display_name: _name, patient_id: _pid, ...editable } = me;
  const update: Schemas["MeUpdate"] = { ...editable, wake_time: "06:45" };
  must(await maria.PATCH("/me", { body: update }));
  // @ts-expect-error an id is sent by the server, never by a client
  const refused: Schemas["MeUpdate"] = { id: 1 };
  void refused;

  // Her phone, a medicine at breakfast and dinner (FHIR Timing `when`), its schedule.
  const platform: Schemas["Platform"] = "android";
  must(
    await maria.PUT("/me/devices/{installation_id}", {
      params: { path: { installation_id: "maria-phone-1" } },
      body: { fcm_token: "fcm-token-for-maria-phone-0001", notifications_enabled: true, platform },
    }),
  );
  const when: Schemas["EventTiming"][] = ["CM", "CV"];
  const med = must(
    await maria.POST("/patients/{patient_id}/medications", {
      params: { path: { patient_id: patientId } },
      body: {
        name: "Metformin 500 mg",
        timing: { repeat: { frequency: 2, period: 1, periodUnit: "d", when } },
      },
    }),
  );
  const schedule = must(
    await maria.GET("/patients/{patient_id}/medications/{medication_id}/schedule", {
      params: { path: { patient_id: patientId, medication_id: med.id } },
    }),
  );
  const firstSlot: string | undefined = schedule[0]?.slot_key;

  // Today, a dose logged twice with one client id, an appointment.
  const today = must(await maria.GET("/me/today"));
  const doses: Schemas["TodayDose"][] = today.patients[0]?.doses ?? [];
  const status: Schemas["DoseStatus"] | undefined = doses[0]?.status;
  void status;
  const report: Schemas["DoseInput"] = {
    client_id: "maria-phone-1:dose:1",
    medication_id: med.id,
    status: "taken",
    taken_at: new Date().toISOString(),
    slot_key: firstSlot ?? null,
  };
  const logged = must(
    await maria.POST("/patients/{patient_id}/doses", {
      params: { path: { patient_id: patientId } },
      body: report,
    }),
  );
  const late: boolean = logged.late;
  void late;
  must(
    await maria.POST("/patients/{patient_id}/appointments", {
      params: { path: { patient_id: patientId } },
      body: {
        title: "Diabetes check",
        type: "in_person",
        location: "Riverside clinic, room 4",
        start: "2026-12-01T15:00:00Z",
        end: "2026-12-01T15:30:00Z",
      },
    }),
  );

  // Her access log, page by page: X-Total-Count and Link (RFC 8288).
  let page = 1;
  for (;;) {
    const answer = await maria.GET("/patients/{patient_id}/access-log", {
      params: { path: { patient_id: patientId }, query: { page, page_size: 20 } },
    });
    const entries: Schemas["AccessLog"][] = must(answer);
    void entries;
    const total = Number(answer.response.headers.get("X-Total-Count"));
    if (!(answer.response.headers.get("Link") ?? "").includes('rel="next"') || total === 0) break;
    page += 1;
  }

  // An invitation, redeemed by Lucía, who sees María's day and logs a dose on her behalf.
  const invitation = must(
    await maria.POST("/patients/{patient_id}/invitations", {
      params: { path: { patient_id: patientId } },
      body: { relationship: "friend", permissions: ["view_medications", "log_doses"] },
    }),
  );
  const redeemed = must(await lucia.POST("/invitations/redeem", { body: { code: invitation.code } }));
  must(await lucia.GET("/me/today"));
  must(
    await lucia.POST("/patients/{patient_id}/doses", {
      params: { path: { patient_id: patientId } },
      body: { ...report, client_id: "lucia-phone:dose:1" },
    }),
  );

  // María revokes; Lucía now meets a 404 in the one error shape.
  const grantId: number | null = redeemed.grant_id;
  if (grantId !== null) {
    await maria.DELETE("/patients/{patient_id}/caregivers/{grant_id}", {
      params: { path: { patient_id: patientId, grant_id: grantId } },
    });
  }
  const gone = await lucia.GET("/patients/{patient_id}/medications", {
    params: { path: { patient_id: patientId } },
  });
  const notFound: number | undefined = gone.error?.code;
  void notFound;

  // The PHQ-9 and María's answers.
  const phq9: Schemas["Template"] = must(
    await maria.GET("/checkin-templates/{code}", { params: { path: { code: "PHQ-9" } } }),
  );
  const answers: Schemas["CheckinAnswers"]["answers"] = {};
  for (const item of phq9.items) answers[item.code] = 0;
  const response = must(
    await maria.POST("/patients/{patient_id}/checkin-responses", {
      params: { path: { patient_id: patientId } },
      body: { template: "PHQ-9", answers },
    }),
  );
  const band: string | null = response.band;
  void band;

  // Priya's worklist, paged; acknowledge, assign, resolve.
  const work = must(await priya.GET("/worklist", { params: { query: { page: 1, page_size: 20 } } }));
  const item: Schemas["WorkItem"] | undefined = work.find((i) => i.kind === "safety");
  if (item === undefined) return;
  const who: Schemas["Person"] | null = item.assigned_to;
  void who;
  const path = { params: { path: { item_id: item.id } } };
  must(await priya.POST("/worklist/{item_id}/acknowledge", path));
  const priyaMe = must(await priya.GET("/me"));
  must(await priya.POST("/worklist/{item_id}/assign", { ...path, body: { user_id: priyaMe.id } }));
  const resolved = must(
    await priya.POST("/worklist/{item_id}/resolve", { ...path, body: { note: "Called María." } }),
  );
  const done: Schemas["WorkItemStatus"] = resolved.status;
  void done;
}
