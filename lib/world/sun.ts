/**
 * Solar position (low-precision almanac: ~0.1 degree, good for 1950-2050), for metadata and rendering.
 * @module
 */

/** Sun elevation above the horizon and azimuth (clockwise from north), degrees, at lat/lon and UTC `date`. */
export function sunPosition(lat: number, lon: number, date: Date): { elevation: number; azimuth: number } {
  const k = Math.PI / 180;
  const d = date.getTime() / 86400000 + 2440587.5 - 2451545.0; // days since J2000.0
  const g = (357.529 + 0.98560028 * d) * k;
  const q = 280.459 + 0.98564736 * d;
  const L = (q + 1.915 * Math.sin(g) + 0.02 * Math.sin(2 * g)) * k;
  const e = (23.439 - 0.00000036 * d) * k;
  const ra = Math.atan2(Math.cos(e) * Math.sin(L), Math.cos(L));
  const dec = Math.asin(Math.sin(e) * Math.sin(L));
  const gmst = (18.697374558 + 24.06570982441908 * d) % 24;
  const H = (gmst * 15 + lon) * k - ra; // local hour angle
  const phi = lat * k;
  const sinEl = Math.sin(phi) * Math.sin(dec) + Math.cos(phi) * Math.cos(dec) * Math.cos(H);
  const elevation = Math.asin(Math.max(-1, Math.min(1, sinEl))) / k;
  const az = Math.atan2(
    -Math.cos(dec) * Math.sin(H),
    Math.sin(dec) * Math.cos(phi) - Math.cos(dec) * Math.cos(H) * Math.sin(phi),
  ) / k;
  return { elevation, azimuth: (az + 360) % 360 };
}
