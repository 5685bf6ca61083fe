import{cc as a}from"./chunk-XAJG3JOI.js";import"./chunk-YVSA2ZOB.js";export{a as default};
